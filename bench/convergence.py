"""Convergence study: validation NME / ICC against training steps, small against paper preset.

Each run is ``auhm train`` itself (``train()`` with ``--val-every``) on one prepared corpus, all at
the same batch size, so curves compare at matched steps and images. Runs, in order (a transfer
run uses the landmark network of its preset trained just before it):

  landmarks:PRESET[:plain]   the landmark network; ``plain`` drops FAN's output stage (the 1×1
                             conv + BatchNorm + ReLU before the last conv), as auhm had it before
  scratch:PRESET             the AU-Net from scratch
  adaptation:PRESET          adaptation layers over the landmark network of that preset

A run may end in ``@STEPS`` to train it for other than --steps (``landmarks:paper:plain@400``).

Writes ``OUT/convergence.csv`` (one row per validation) and ``OUT/convergence.png``, and prints,
per run, the metric at a few steps and the first step at which the landmark NME reached --target.

    python bench/convergence.py --make-corpus work/conv --out bench/convergence \\
        --runs landmarks:small landmarks:paper landmarks:paper:plain scratch:small scratch:paper \\
               adaptation:small adaptation:paper --steps 1000 --batch-size 16 --val-every 100
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch.nn as nn

from auhm.models.blocks import HeatmapHead
from auhm.train.config import TrainConfig
from auhm.train.trainer import train


@contextlib.contextmanager
def plain_head():
    """Build heatmap nets without FAN's output stage (the last conv straight on the trunk)."""
    original = HeatmapHead.__init__

    def init(self, in_channels, out_channels):
        original(self, in_channels, out_channels)
        self.norm = nn.Identity()

    HeatmapHead.__init__ = init
    try:
        yield
    finally:
        HeatmapHead.__init__ = original


def make_corpus(root: Path, subjects: int, frames: int, seed: int, size: int) -> Path:
    """The demo's recipe: ``auhm synth`` (DISFA layout) then ``auhm prepare synth``."""
    prepared = root / f"prepared{size}"
    if not (prepared / "manifest.json").exists():
        auhm = [sys.executable, "-m", "auhm"]
        subprocess.run(auhm + ["synth", str(root / "corpus"), "--subjects", str(subjects), "--frames", str(frames), "--seed", str(seed), "--quiet"], check=True)
        subprocess.run(auhm + ["prepare", "synth", str(root / "corpus"), "--out", str(prepared), "--size", str(size), "--quiet"], check=True)
    return prepared


def steps_per_epoch(data: Path, batch_size: int, seed: int) -> int:
    """Training steps in one epoch of ``auhm train`` on this corpus (its held-out split left out)."""
    from auhm.train.prepared import load_prepared, split_corpus

    corpus = load_prepared(data)
    return max(1, len(split_corpus(corpus.manifest, corpus.shards, seed=seed).train) // batch_size)


def finished_history(run_dir: Path, steps: int) -> pd.DataFrame | None:
    """The history of a run this study already finished (same steps), so a cut-short study resumes."""
    history = run_dir / "history.csv"
    if not (run_dir / "last.pt").exists() or not history.exists():
        return None
    h = pd.read_csv(history)
    return h if len(h) and int(h["step"].max()) == steps else None


def run_one(spec: str, data: Path, out: Path, args, backbones: dict[str, Path]) -> pd.DataFrame:
    spec, _, own_steps = spec.partition("@")
    steps = int(own_steps) if own_steps else args.steps
    parts = spec.split(":")
    method, preset, variant = parts[0], parts[1], (parts[2] if len(parts) > 2 else "")
    run_dir = out / "runs" / spec.replace(":", "-")
    epochs = args.epochs or math.ceil(steps / steps_per_epoch(data, args.batch_size, args.seed))
    kw = dict(data=data, out=run_dir, preset=preset, batch_size=args.batch_size, epochs=epochs, max_steps=steps,
              val_every=args.val_every, device=args.device, precision=args.precision, seed=args.seed, quiet=True)
    if method == "landmarks":
        kw["task"] = "landmarks"
    else:
        kw["method"] = method
    if method == "adaptation":
        if preset not in backbones:
            raise SystemExit(f"{spec}: run landmarks:{preset} before it (its landmark network is the backbone)")
        kw["backbone"] = backbones[preset]
    h = finished_history(run_dir, steps)
    if h is not None:
        print(f"{spec}: reusing the finished run in {run_dir}", flush=True)
        wall = float(h["seconds"].sum())  # its training time as recorded (validations not included)
    else:
        t0 = time.perf_counter()
        with plain_head() if variant == "plain" else contextlib.nullcontext():
            h = train(TrainConfig(**kw)).history
        wall = time.perf_counter() - t0
    if method == "landmarks" and not variant:
        backbones[preset] = run_dir / "last.pt"
    metric = "val_nme" if method == "landmarks" else "val_icc"
    return pd.DataFrame({"run": spec, "method": method, "preset": preset, "variant": variant or "-", "step": h["step"],
                         "images": h["step"] * args.batch_size, "train_loss": h["train_loss"], "metric": metric.removeprefix("val_"),
                         "value": h[metric], "wall_s": wall})


def plot(df: pd.DataFrame, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 3.8))
    axes = fig.subplots(1, 2)
    for ax, metric, label in ((axes[0], "nme", "landmark NME (inter-ocular), held-out subjects"), (axes[1], "icc", "ICC(3,1), mean over AUs, held-out subjects")):
        for run, g in df[df.metric == metric].groupby("run", sort=False):
            ax.plot(g["step"], g["value"], marker=".", label=run)
        ax.set(xlabel="training step", ylabel=label)
        if metric == "nme":
            ax.set_yscale("log")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="a prepared corpus (auhm prepare … --size 256)")
    ap.add_argument("--make-corpus", type=Path, help="make the demo's corpus here first (16 subjects × 250 frames, seed 11)")
    ap.add_argument("--subjects", type=int, default=16)
    ap.add_argument("--frames", type=int, default=250)
    ap.add_argument("--runs", nargs="+", default=["landmarks:small", "landmarks:paper", "scratch:small", "scratch:paper", "adaptation:small", "adaptation:paper"])
    ap.add_argument("--steps", type=int, default=1000)
    ap.add_argument("--epochs", type=int, default=None, help="the cosine schedule's length (default: the epochs that hold the run's steps, as auhm train would)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--val-every", type=int, default=100)
    ap.add_argument("--target", type=float, default=0.06, help="landmark NME to report the first step reaching")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=Path("bench/convergence"))
    args = ap.parse_args()
    data = args.data or (make_corpus(args.make_corpus, args.subjects, args.frames, 11, 256) if args.make_corpus else None)
    if data is None:
        raise SystemExit("give --data or --make-corpus")
    args.out.mkdir(parents=True, exist_ok=True)
    frames, backbones = [], {}
    for spec in args.runs:
        frames.append(run_one(spec, data, args.out, args, backbones))
        df = pd.concat(frames, ignore_index=True)
        df.to_csv(args.out / "convergence.csv", index=False)
        plot(df, args.out / "convergence.png")
        g = frames[-1]
        at = ", ".join(f"{int(s)}: {v:.3f}" for s, v in zip(g["step"], g["value"]) if s in (100, 200, 500, 1000, 2000, 3000) or s == g["step"].max())
        reached = g[(g.metric == "nme") & (g.value <= args.target)]["step"]
        note = f"; NME ≤ {args.target} first at step {int(reached.iloc[0])}" if len(reached) else ""
        print(f"{spec:24s} {g['metric'].iloc[0]} at step {at}{note} ({g['wall_s'].iloc[0] / 60:.1f} min)", flush=True)


if __name__ == "__main__":
    main()
