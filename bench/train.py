"""Training throughput per method, preset and precision, and how much of it the data pipeline keeps.

For each configuration, two figures measured in the same run on the same model:
  full  – the real training step fed by auhm train's batch loader (JPEG decode + augmentation:
          worker processes beside a GPU, a share per core between steps on a CPU; heatmap targets built on
          the device), as ``auhm train`` runs it;
  model – the same step on one batch pre-loaded on the device (no data pipeline);
and their ratio (target ≥ 90 %: the pipeline keeps up with the model); and
  data  – the data pipeline alone, its batches taken as fast as it delivers them.

    python bench/train.py                              # everything (slow on small CPUs)
    python bench/train.py --presets small --methods scratch adaptation --batch-sizes 16 --steps 20 [--workers 2]

``--contention`` measures instead ``auhm train`` itself (a subprocess, its history.csv's img/s) on a
quiet machine and beside one busy Python process, with the thread count following the load
(``--follow-load``) and fixed at every core (the default), and prints each figure and the
busy/quiet ratios:

    python bench/train.py --contention --presets small --methods scratch --precisions fp32 --batch-sizes 16 --steps 150
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch
from torch.utils.data import default_collate

from auhm.data.shards import ShardDataset, ShardRows, list_shards
from auhm.device import grad_scaler, resolve_device, use_channels_last
from auhm.models import build_model
from auhm.train.augment import AugmentConfig, ShardView
from auhm.train.batches import ForkedBatches, batch_loader, resolve_workers
from auhm.train.sampling import EpochBatches
from auhm.train.steps import batch_to_device, train_step

AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
WARMUP = 2  # untimed steps first (oneDNN primitive creation, worker start-up)
METHODS = ("scratch", "finetune", "adaptation", "attention", "reparam", "resnet18", "landmarks")


def make_shards(root: Path, frames: int, size: int = 256, subject: str = "S1", split: str = "train") -> ShardDataset:
    """Noise crops (JPEG, like prepared shards) with a plausible landmark cloud and random labels."""
    rng = np.random.default_rng(0)
    rows = ShardRows(f"{subject}.avi", subject, split, AUS)
    for f in range(frames):
        img = cv_noise(rng, size)
        lms = rng.uniform(0.25 * size, 0.75 * size, (68, 2))
        rows.add(f, img, lms, np.array([[1, 0, 0], [0, 1, 0]], np.float32), rng.integers(0, 6, len(AUS)).astype(np.float32))
    rows.write(root / "shards" / f"{subject}.parquet")
    return ShardDataset(list_shards(root), AUS)


def make_corpus(root: Path, frames: int, size: int) -> Path:
    """A prepared corpus for ``auhm train``: one training subject of ``frames`` crops, one small held-out one."""
    import json

    make_shards(root, frames, size, "S1", "train")
    make_shards(root, 32, size, "S2", "dev")
    splits = {"train": ["S1"], "dev": ["S2"]}
    (root / "manifest.json").write_text(json.dumps({"kind": "synth", "aus": list(AUS), "crop": {"size": size}, "splits": splits, "folds": None}))
    return root


def train_speed(data: Path, out: Path, method: str, preset: str, precision: str, batch_size: int, steps: int, threads: int | None,
                follow_load: bool = False) -> float:
    """img/s of ``auhm train`` over ``steps`` steps (its history.csv), in a process of its own."""
    import subprocess
    import sys

    import pandas as pd

    cmd = [sys.executable, "-m", "auhm", "train", str(data), "--out", str(out), "--method", method, "--preset", preset, "--precision", precision,
           "--batch-size", str(batch_size), "--max-steps", str(steps), "--epochs", "1000", "--device", "cpu", "--quiet"]
    if method in ("finetune", "adaptation", "attention", "reparam"):
        raise SystemExit("--contention measures methods without a backbone (scratch, landmarks, resnet18, random-backbone)")
    if method == "landmarks":
        cmd[cmd.index("--method"): cmd.index("--method") + 2] = ["--task", "landmarks"]
    if threads:
        cmd += ["--threads", str(threads)]
    if follow_load:
        cmd += ["--follow-load"]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{run.stderr[-2000:]}")
    return float(pd.read_csv(out / "history.csv")["images_per_s"].iloc[-1])


def contention(args) -> None:
    """auhm train's img/s quiet and beside one busy process, threads following the load against all threads fixed."""
    import subprocess
    import sys

    cores = torch.get_num_threads()
    print(f"auhm train on the CPU, {args.steps} steps, {cores} threads by default; 'busy': one more process spinning in Python")
    print(f"{'preset':6s} {'method':11s} {'prec':5s} {'batch':>5s} {'threads':>8s} {'quiet img/s':>12s} {'busy img/s':>11s} {'busy/quiet':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        data = make_corpus(Path(tmp) / "corpus", frames=max(args.batch_sizes) * (args.steps + 2), size=args.crop_size)
        for preset, method, precision, bs in itertools.product(args.presets, args.methods, args.precisions, args.batch_sizes):
            figures = {}
            for load in ("quiet", "busy"):
                spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if load == "busy" else None
                try:
                    for label, threads in (("follow-load", None), ("fixed", cores)):
                        figures[label, load] = train_speed(data, Path(tmp) / f"run-{load}-{label}", method, preset, precision, bs, args.steps,
                                                           threads, follow_load=threads is None)
                finally:
                    if spinner is not None:
                        spinner.kill()
                        spinner.wait()
            for label in ("follow-load", "fixed"):
                quiet, busy = figures[label, "quiet"], figures[label, "busy"]
                print(f"{preset:6s} {method:11s} {precision:5s} {bs:5d} {label:>8s} {quiet:12.1f} {busy:11.1f} {busy / quiet:11.0%}", flush=True)
            print(f"  follow-load/fixed when quiet: {figures['follow-load', 'quiet'] / figures['fixed', 'quiet']:.0%}", flush=True)


def cv_noise(rng, size: int) -> np.ndarray:
    # smooth noise compresses like a face crop, unlike white noise
    small = rng.integers(0, 256, (size // 8, size // 8, 3), dtype=np.uint8)
    import cv2

    return cv2.resize(small, (size, size), interpolation=cv2.INTER_CUBIC)


@dataclass
class Setup:
    """A model in training mode, its optimiser and auhm train's batch loader over the shards."""

    model: torch.nn.Module
    task: str
    precision: str
    device: torch.device
    channels_last: bool
    optimizer: torch.optim.Optimizer
    scaler: torch.amp.GradScaler
    view: ShardView
    loader: Iterable

    def step(self, images: torch.Tensor, rest: dict) -> float:
        """One training step, as auhm train takes it; returns the loss (waiting for it)."""
        return train_step(self.model, self.model, images, rest, self.optimizer, self.scaler, self.device, self.precision, self.task).item()

    def endless(self) -> Iterator[dict]:
        """The loader's batches, epoch after epoch."""
        return itertools.chain.from_iterable(itertools.repeat(self.loader))


def training_setup(method: str, preset: str, precision: str, batch_size: int, shards: ShardDataset, workers: int | None, device) -> Setup:
    torch.manual_seed(0)
    model = build_model(method, AUS if method != "landmarks" else (), preset).to(device)
    channels_last = use_channels_last(device, precision)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    task = "landmarks" if method == "landmarks" else "au"
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=1e-6)
    view = ShardView(shards, np.arange(len(shards)), model.input_size, AugmentConfig(), negative_fraction=0.1 if task == "landmarks" else 0.0)
    loader = batch_loader(view, device, workers, batch_sampler=EpochBatches(len(view), batch_size, seed=0))
    return Setup(model, task, precision, device, channels_last, opt, grad_scaler(device, precision), view, loader)


def measure(method: str, preset: str, precision: str, batch_size: int, steps: int, shards: ShardDataset, workers: int, device) -> tuple[float, float, float]:
    """(full, model-only, data-only) images per second, each over `steps` timed steps after warm-up ones."""
    setup = training_setup(method, preset, precision, batch_size, shards, workers, device)
    view, loader, channels_last = setup.view, setup.loader, setup.channels_last

    def timed(next_batch, n: int) -> tuple[int, float]:
        """Images and seconds of n training steps on the batches next_batch() gives."""
        t0, done = time.perf_counter(), 0
        for _ in range(n):
            images, rest = next_batch()
            setup.step(images, rest)
            done += images.shape[0]
        if device.type == "cuda":
            torch.cuda.synchronize()
        return done, time.perf_counter() - t0

    # The pre-loaded batch is collated here, not drawn from the loader, so that no worker is
    # busy (and competing for the cores) while the model-only figure is measured.
    fixed = batch_to_device(default_collate([view[(i, 0)] for i in range(batch_size)]), device, channels_last)
    batches = setup.endless()
    from_model = lambda: fixed  # noqa: E731
    from_loader = lambda: batch_to_device(next(batches), device, channels_last)  # noqa: E731
    timed(from_model, WARMUP)
    # Worker processes start with their queues full (prefetch_factor batches each): warm up
    # until that stock is spent, or the first timed steps would come for free.
    stock = 0 if isinstance(loader, ForkedBatches) else 4 * loader.num_workers * (loader.prefetch_factor or 2)  # 8 per worker
    timed(from_loader, WARMUP + stock)
    # Batches between steps are built only when asked, so the two can alternate in short rounds, which
    # keeps a shared machine's drift out of the ratio. Worker processes would fill their queue
    # during a model-only round: with them, one round each.
    rounds = max(1, steps // 5) if isinstance(loader, ForkedBatches) else 1
    totals = {"model": [0, 0.0], "full": [0, 0.0]}
    for r in range(rounds):
        n = steps // rounds + (r < steps % rounds)
        for key, source in (("model", from_model), ("full", from_loader)):
            done, seconds = timed(source, n)
            totals[key][0] += done
            totals[key][1] += seconds
    full, model_only = (totals[k][0] / totals[k][1] for k in ("full", "model"))
    # the data pipeline alone, consumed as fast as it delivers (after the same warm-up)
    loader_only = iter(batches)
    for _ in range(WARMUP + stock):
        next(loader_only)
    t0 = time.perf_counter()
    data_only = sum(len(next(loader_only)["index"]) for _ in range(steps)) / (time.perf_counter() - t0)
    return full, model_only, data_only


def _loader_words(workers: int) -> str:
    return f"{workers} worker processes" if workers else f"{torch.get_num_threads()} processes between steps"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--presets", nargs="+", default=["small", "paper"])
    ap.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    ap.add_argument("--batch-sizes", nargs="+", type=int, default=[8, 16])
    ap.add_argument("--steps", type=int, default=20, help="timed steps per figure (after the warm-up ones)")
    ap.add_argument("--workers", type=int, default=None, help="data worker processes (default: auhm train's: none on a CPU, up to 12 beside a GPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--crop-size", type=int, default=256, help="side of the prepared crops (auhm prepare --size; make demo uses 128)")
    ap.add_argument("--contention", action="store_true", help="auhm train alone and beside one busy process (see above)")
    args = ap.parse_args()
    if args.contention:
        return contention(args)
    device = resolve_device(args.device)
    print(f"device {device}, torch {torch.__version__}, threads {torch.get_num_threads()}, cpu {torch.backends.cpu.get_cpu_capability()}, "
          f"data: {_loader_words(resolve_workers(args.workers, device))}, {args.crop_size}-px crops, {args.steps} timed steps, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    print(f"{'preset':6s} {'method':11s} {'prec':5s} {'batch':>5s} {'full img/s':>11s} {'model img/s':>12s} {'ratio':>6s} {'data img/s':>11s}")
    with tempfile.TemporaryDirectory() as tmp:
        # distinct frames for up to 64 batches; longer runs go round again (a new epoch)
        shards = make_shards(Path(tmp), frames=max(args.batch_sizes) * min(args.steps + WARMUP + 1, 64), size=args.crop_size)
        for preset, method, precision, bs in itertools.product(args.presets, args.methods, args.precisions, args.batch_sizes):
            full, model_only, data_only = measure(method, preset, precision, bs, args.steps, shards, args.workers, device)
            print(f"{preset:6s} {method:11s} {precision:5s} {bs:5d} {full:11.1f} {model_only:12.1f} {full / model_only:6.0%} {data_only:11.1f}", flush=True)


if __name__ == "__main__":
    main()
