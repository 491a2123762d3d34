"""The paper's Table 2 (and Table 5's columns) in miniature, on a synthetic DISFA-layout corpus.

Every method is trained with the same budget under the DISFA protocol (3-fold subject-independent
cross-validation, scores on the pooled out-of-fold predictions). The landmark network the transfer
methods start from is trained on a *separate* synthetic corpus of other people, as the paper's
FAN was trained on other data (LS3D-W), so no held-out face is ever seen by any part of a model.

    python bench/table2.py                                   # 12 subjects, small preset (~hours on 2 CPUs)
    python bench/table2.py --subjects 12 --frames 120 --epochs 2 --out bench_out/table2   # miniature

Prints ICC(3,1) and MSE per AU and average (Table 2's shape), then parameters, GFLOPs and s/img
(batch 1, fp32, this machine) per method (Table 5's columns), and the wall time of each part.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from auhm.data import PrepareConfig, prepare_corpus
from auhm.face.crop import CropConfig
from auhm.models import build_model
from auhm.models.complexity import count_macs, count_parameters
from auhm.synth import SynthConfig, make_corpus
from auhm.data.corpora import corpus_spec
from auhm.targets import au_name
from auhm.train.config import TrainConfig
from auhm.train.folds import train_folds
from auhm.train.trainer import train

METHODS = ["scratch", "finetune", "reparam", "random-backbone", "attention", "resnet18", "adaptation"]  # Table 2's order
TRANSFER = {"finetune", "reparam", "attention", "adaptation"}


def seconds_per_image(method: str, aus, preset: str, backbone: Path | None, reps: int = 10) -> float:
    opts = {"backbone": str(backbone)} if backbone is not None and method in TRANSFER else {}
    model = build_model(method, aus, preset, **opts).eval()
    x = torch.rand(1, 3, model.input_size, model.input_size)
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
    return (time.perf_counter() - t0) / reps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("bench_out/table2"))
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--frames", type=int, default=300)
    ap.add_argument("--landmark-subjects", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--landmark-epochs", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    out = args.out
    crop = CropConfig(size=128 if args.preset == "small" else 256)
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    make_corpus(SynthConfig(out / "au_corpus", subjects=args.subjects, frames=args.frames, seed=args.seed), quiet=True)
    make_corpus(SynthConfig(out / "landmark_corpus", subjects=args.landmark_subjects, frames=args.frames,
                            first_subject=args.subjects, seed=args.seed + 1000), quiet=True)
    prepare_corpus("synth", out / "au_corpus", out / "au_prepared", PrepareConfig(crop=crop), quiet=True)
    prepare_corpus("synth", out / "landmark_corpus", out / "landmark_prepared", PrepareConfig(crop=crop), quiet=True)
    wall["corpora"] = time.perf_counter() - t0

    common = dict(preset=args.preset, batch_size=args.batch_size, quiet=True, seed=args.seed)
    t0 = time.perf_counter()
    lm = train(TrainConfig(out / "landmark_prepared", out / "runs" / "landmarks", task="landmarks", epochs=args.landmark_epochs, **common))
    backbone = lm.out / "best.pt"
    wall["landmark network"] = time.perf_counter() - t0

    aus = corpus_spec("disfa").aus
    rows = {}
    for method in args.methods:
        t0 = time.perf_counter()
        result = train_folds(TrainConfig(out / "au_prepared", out / "runs" / method, method=method, folds=3, epochs=args.epochs,
                                         backbone=backbone if method in TRANSFER else None, **common))
        wall[method] = time.perf_counter() - t0
        rows[method] = result.scores
        print(f"{method}: ICC {result.scores.loc['ICC', 'Avg.']:.3f}, MSE {result.scores.loc['MSE', 'Avg.']:.3f} ({wall[method]:.0f} s)", flush=True)

    cols = [au_name(a) for a in aus] + ["Avg."]
    print(f"\nTable 2 (synthetic DISFA layout, {args.subjects} subjects × {args.frames} frames, 3-fold, preset {args.preset}, {args.epochs} epochs)")
    print("| metric | method | " + " | ".join(c.replace("AU0", "AU") for c in cols) + " |")
    print("|---|---|" + "---|" * len(cols))
    for metric in ("ICC", "MSE"):
        for method, scores in rows.items():
            print(f"| {metric} | {method} | " + " | ".join(f"{scores.loc[metric, c]:.2f}" for c in cols) + " |")

    print(f"\nTable 5 columns (preset {args.preset}, s/img at batch 1, fp32, {torch.get_num_threads()} threads)")
    print("| method | params | trainable | GFLOPs | s/img | ICC |")
    print("|---|---|---|---|---|---|")
    for method, scores in rows.items():
        opts = {"backbone": str(backbone)} if method in TRANSFER else {}
        model = build_model(method, aus, args.preset, **opts)
        total, trainable = count_parameters(model)
        gflops = 2 * count_macs(model, model.input_size) / 1e9
        spi = seconds_per_image(method, aus, args.preset, backbone)
        print(f"| {method} | {total / 1e6:.2f}M | {trainable / 1e6:.3f}M | {gflops:.2f} | {spi:.4f} | {scores.loc['ICC', 'Avg.']:.2f} |")
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in wall.items()) + f"; total {sum(wall.values()) / 60:.1f} min")


if __name__ == "__main__":
    main()
