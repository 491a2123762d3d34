"""Forward throughput of every method on this CPU: fp32, and bf16 autocast with channels_last.

    python bench/models.py [--presets paper small] [--batch 8] [--reps 3] [--threads 2] [--device cpu]

Prints images/s and achieved GFLOP/s (FLOPs = 2 × multiply-adds, as in `auhm models`) per
method, preset and precision, and the bf16 / fp32 speed ratio measured in the same run.
"""

from __future__ import annotations

import argparse
import time

import torch

from auhm.models import build_model, list_methods
from auhm.models.complexity import count_macs, first_aus


def images_per_second(model: torch.nn.Module, x: torch.Tensor, reps: int, bf16: bool) -> float:
    sync = torch.cuda.synchronize if x.is_cuda else (lambda: None)
    with torch.inference_mode(), torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
        model(x)  # warm-up (allocations, oneDNN / cuDNN algorithm choice)
        sync()
        best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            model(x)
            sync()
            best = min(best, time.perf_counter() - t)
    return x.shape[0] / best


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
    aus = first_aus(12)
    device = torch.device(args.device)
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    print(f"torch {torch.__version__}, {where}, "
          f"{torch.get_num_threads()} threads, batch {args.batch}, best of {args.reps}")
    print(f"{'preset':6} {'method':16} {'GFLOP/img':>9} {'fp32 img/s':>10} {'GFLOP/s':>8} {'bf16+CL img/s':>13} {'GFLOP/s':>8} {'bf16/fp32':>9}")
    for preset in args.presets:
        for method in args.methods:
            torch.manual_seed(0)
            model = build_model(method, aus, preset).eval()
            gflop = 2 * count_macs(model, model.input_size) / 1e9
            model = model.to(device)
            x = torch.rand(args.batch, 3, model.input_size, model.input_size, device=device)
            fp32 = images_per_second(model, x, args.reps, bf16=False)
            model_cl = model.to(memory_format=torch.channels_last)
            bf16 = images_per_second(model_cl, x.contiguous(memory_format=torch.channels_last), args.reps, bf16=True)
            print(f"{preset:6} {method:16} {gflop:9.2f} {fp32:10.1f} {fp32 * gflop:8.1f} {bf16:13.1f} {bf16 * gflop:8.1f} {bf16 / fp32:9.2f}", flush=True)


if __name__ == "__main__":
    main()
