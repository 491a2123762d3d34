"""Forward throughput of every method: fp32, and bf16 autocast with channels_last.

    python bench/models.py [--presets paper small] [--batch 8] [--reps 3] [--threads 2] [--device cpu]

Per method, preset and precision: images/s (wall clock, fastest of --reps passes) and achieved
GFLOP/s (FLOPs = 2 × multiply-adds, as in `auhm models`). On the CPU it also prints GFLOP per
CPU-second of this process (process_time), which stays meaningful when other jobs share the
cores, and the bf16 / fp32 ratio is measured in the same run on that figure.
"""

from __future__ import annotations

import argparse
import time

import torch

from auhm.models import build_model, list_methods
from auhm.models.complexity import count_macs, first_aus


def throughput(model: torch.nn.Module, x: torch.Tensor, reps: int, bf16: bool) -> tuple[float, float]:
    """(images per wall second, images per CPU second of this process), fastest pass of each."""
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        model(x)  # warm-up (allocations, oneDNN / cuDNN algorithm choice)
        sync()
        wall = cpu = float("inf")
        for _ in range(reps):
            t, c = time.perf_counter(), time.process_time()
            model(x)
            sync()
            wall, cpu = min(wall, time.perf_counter() - t), min(cpu, time.process_time() - c)
    return x.shape[0] / wall, x.shape[0] / cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--presets", nargs="+", default=["paper", "small"])
    ap.add_argument("--methods", nargs="+", default=list_methods())
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--reps", type=int, default=3, help="timed passes; the fastest is reported")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, or cuda for the same table on a GPU")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    on_cpu = device.type == "cpu"
    aus = first_aus(12)
    where = f"CPU capability {torch.backends.cpu.get_cpu_capability()}" if on_cpu else torch.cuda.get_device_name(device)
    print(f"torch {torch.__version__}, {where}, {torch.get_num_threads()} threads, batch {args.batch}, best of {args.reps}")
    cols = ["preset", "method", "GFLOP/img", "fp32 img/s", "GFLOP/s", "bf16+CL img/s", "GFLOP/s"]
    cols += ["fp32 GFLOP/CPU-s", "bf16 GFLOP/CPU-s", "bf16/fp32 (CPU-s)"] if on_cpu else ["bf16/fp32"]
    print(" | ".join(cols))
    for preset in args.presets:
        for method in args.methods:
            torch.manual_seed(0)
            model = build_model(method, aus, preset).eval()
            gflop = 2 * count_macs(model, model.input_size) / 1e9
            model = model.to(device)
            x = torch.rand(args.batch, 3, model.input_size, model.input_size, device=device)
            fp32, fp32_cpu = throughput(model, x, args.reps, bf16=False)
            model = model.to(memory_format=torch.channels_last)
            bf16, bf16_cpu = throughput(model, x.contiguous(memory_format=torch.channels_last), args.reps, bf16=True)
            row = [preset, method, f"{gflop:.2f}", f"{fp32:.1f}", f"{fp32 * gflop:.1f}", f"{bf16:.1f}", f"{bf16 * gflop:.1f}"]
            row += [f"{fp32_cpu * gflop:.1f}", f"{bf16_cpu * gflop:.1f}", f"{bf16_cpu / fp32_cpu:.2f}"] if on_cpu else [f"{bf16 / fp32:.2f}"]
            print(" | ".join(row), flush=True)


if __name__ == "__main__":
    main()
