"""The paper's Table 2 in miniature: does transfer from a landmark network beat training from scratch?

The landmark network is pretrained on a synthetic stand-in for LS3D-W (``auhm synth --layout
landmarks``: still faces of many identities, none of them an AU subject, read back by
``auhm prepare landmarks --format 300w``), as the paper's FAN was trained on other people. Every
AU method is then trained with the same budget on a small synthetic AU corpus (DISFA layout)
under the DISFA protocol: 3-fold subject-independent cross-validation, scored on the pooled
out-of-fold predictions (each fold's last.pt), over several seeds, with the bootstrap interval of
``auhm score --ci`` (whole videos resampled).

    python bench/table2.py --out bench_out/table2                          # 12 subjects, 3 seeds, small preset
    python bench/table2.py --out /tmp/t2 --subjects 6 --frames 40 --images 600 --identities 100 \\
        --landmark-epochs 1 --epochs 1 --seeds 0 --methods scratch adaptation      # a dry run in minutes

Prints the table (mean ICC over seeds, each seed's ICC and bootstrap interval, MSE), the per-AU
ICC of the seed mean, whether the paper's ordering holds, Table 5's columns, and writes
OUT/table2.csv and OUT/curves.png (held-out ICC per epoch of every fold, seed 0).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import pandas as pd
import torch

from auhm.data import PrepareConfig, prepare_corpus
from auhm.data.prepare_landmarks import LandmarkPrepareConfig, prepare_landmarks
from auhm.face.crop import CropConfig
from auhm.io import read_predictions
from auhm.metrics.bootstrap import bootstrap_scores
from auhm.models import build_model
from auhm.models.complexity import count_macs, count_parameters
from auhm.synth import SynthConfig, make_corpus
from auhm.targets import au_name
from auhm.train.config import TrainConfig
from auhm.train.folds import train_folds
from auhm.train.trainer import train

METHODS = ["scratch", "finetune", "reparam", "random-backbone", "attention", "resnet18", "adaptation"]  # Table 2's order
TRANSFER = {"finetune", "reparam", "attention", "adaptation"}


def seconds_per_image(method: str, aus, preset: str, backbone: Path, reps: int = 10) -> float:
    opts = {"backbone": str(backbone)} if method in TRANSFER else {}
    model = build_model(method, aus, preset, **opts).eval()
    x = torch.rand(1, 3, model.input_size, model.input_size)
    with torch.inference_mode():
        model(x)
        t0 = time.perf_counter()
        for _ in range(reps):
            model(x)
    return (time.perf_counter() - t0) / reps


def pooled_scores(run: Path, labels_path: Path, aus) -> tuple[pd.DataFrame, tuple[float, float]]:
    """Scores of a k-fold run's pooled out-of-fold predictions, and the bootstrap 95 % interval of the mean ICC."""
    from auhm.metrics import au_scores

    pred = read_predictions(run / "oof_predictions.parquet")
    labels = pd.read_parquet(labels_path)
    cols = [au_name(a) for a in aus]
    joined = pred.merge(labels, on=["video", "frame"], suffixes=("_p", ""))
    y_pred, y_true = joined[[c + "_p" for c in cols]].to_numpy(float), joined[cols].to_numpy(float)
    low, high = bootstrap_scores(y_true, y_pred, joined["video"].to_numpy(), aus)
    return au_scores(y_true, y_pred, aus), (float(low.loc["ICC", "Avg."]), float(high.loc["ICC", "Avg."]))


def curves(runs: dict[str, Path], path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 4))
    ax = fig.subplots()
    for method, run in runs.items():
        h = pd.concat([pd.read_csv(f).assign(fold=f.parent.name) for f in sorted(run.glob("fold*/history.csv"))])
        mean = h.groupby("epoch")["val_icc"].mean()
        ax.plot(mean.index, mean.values, marker=".", label=method)
    ax.set(xlabel="epoch", ylabel="held-out fold ICC(3,1), mean of 3 folds", title="seed 0")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path("bench_out/table2"))
    ap.add_argument("--subjects", type=int, default=12)
    ap.add_argument("--frames", type=int, default=120)
    ap.add_argument("--identities", type=int, default=600, help="landmark corpus: people (none of them an AU subject)")
    ap.add_argument("--images", type=int, default=6000, help="landmark corpus: still images")
    ap.add_argument("--landmark-epochs", type=int, default=3)
    ap.add_argument("--epochs", type=int, default=6, help="AU training budget per fold, the same for every method")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--preset", default="small")
    ap.add_argument("--methods", nargs="+", default=METHODS)
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    ap.add_argument("--data-seed", type=int, default=1)
    args = ap.parse_args()

    out = args.out
    crop = CropConfig(size=128 if args.preset == "small" else 256)
    wall: dict[str, float] = {}
    t0 = time.perf_counter()
    if not (out / "au_prepared" / "manifest.json").exists():
        make_corpus(SynthConfig(out / "au_corpus", subjects=args.subjects, frames=args.frames, seed=args.data_seed), quiet=True)
        prepare_corpus("synth", out / "au_corpus", out / "au_prepared", PrepareConfig(crop=crop), quiet=True)
    if not (out / "landmark_prepared" / "manifest.json").exists():
        make_corpus(SynthConfig(out / "landmark_corpus", layout="landmarks", identities=args.identities, images=args.images,
                                seed=args.data_seed), quiet=True)
        prepare_landmarks("300w", out / "landmark_corpus", out / "landmark_prepared", LandmarkPrepareConfig(crop=crop), quiet=True)
    wall["corpora"] = time.perf_counter() - t0

    common = dict(preset=args.preset, batch_size=args.batch_size, quiet=True)
    t0 = time.perf_counter()
    backbone = out / "runs" / "landmarks" / "last.pt"
    if backbone.exists():  # a cut-short study resumes with the same landmark network
        nme = pd.read_csv(backbone.parent / "history.csv")["val_nme"].iloc[-1]
        print(f"landmark network: reusing {backbone} (NME {nme:.3f} on held-out identities)", flush=True)
    else:
        lm = train(TrainConfig(out / "landmark_prepared", backbone.parent, task="landmarks", epochs=args.landmark_epochs, seed=0, **common))
        wall["landmark network"] = time.perf_counter() - t0
        print(f"landmark network: NME {lm.history['val_nme'].iloc[-1]:.3f} on held-out identities ({wall['landmark network']:.0f} s)", flush=True)

    aus = list(pd.read_json(out / "au_prepared" / "manifest.json", typ="series")["aus"])
    rows, per_au, seed0 = [], {}, {}
    for seed in args.seeds:  # every method once before the next seed: a cut-short run still has whole tables
        for method in args.methods:
            t0 = time.perf_counter()
            run = out / "runs" / f"{method}-seed{seed}"
            train_folds(TrainConfig(out / "au_prepared", run, method=method, folds=3, epochs=args.epochs, seed=seed,
                                    backbone=backbone if method in TRANSFER else None, **common))
            scores, (lo, hi) = pooled_scores(run, out / "au_prepared" / "labels.parquet", aus)
            seconds = time.perf_counter() - t0
            wall[method] = wall.get(method, 0.0) + seconds
            rows.append({"method": method, "seed": seed, "icc": scores.loc["ICC", "Avg."], "icc_low": lo, "icc_high": hi, "mse": scores.loc["MSE", "Avg."]})
            per_au.setdefault(method, []).append(scores.loc["ICC"])
            if seed == args.seeds[0]:
                seed0[method] = run
            print(f"{method} seed {seed}: ICC {rows[-1]['icc']:.3f} [{lo:.3f}, {hi:.3f}], MSE {rows[-1]['mse']:.3f} ({seconds:.0f} s)", flush=True)
    table = pd.DataFrame(rows)
    table.to_csv(out / "table2.csv", index=False)
    curves(seed0, out / "curves.png")

    print(f"\nTable 2 (synthetic DISFA layout, {args.subjects} subjects × {args.frames} frames, 3-fold, preset {args.preset}, "
          f"{args.epochs} epochs per fold, seeds {args.seeds}; landmark network pretrained on {args.images} stills of {args.identities} other people)")
    print("| method | ICC, mean of seeds | ICC per seed [bootstrap 95 %] | MSE |")
    print("|---|---|---|---|")
    summary = table.groupby("method", sort=False).agg(icc=("icc", "mean"), sd=("icc", "std"), mse=("mse", "mean"))
    for method, g in table.groupby("method", sort=False):
        seeds = ", ".join(f"{r.icc:.2f} [{r.icc_low:.2f}, {r.icc_high:.2f}]" for r in g.itertuples())
        sd = f" ± {summary.loc[method, 'sd']:.2f}" if len(g) > 1 else ""
        print(f"| {method} | {summary.loc[method, 'icc']:.3f}{sd} | {seeds} | {summary.loc[method, 'mse']:.2f} |")
    cols = [au_name(a) for a in aus] + ["Avg."]
    print("\nICC per AU, mean of seeds")
    print("| method | " + " | ".join(c.replace("AU0", "AU") for c in cols) + " |")
    print("|---|" + "---|" * len(cols))
    for method, series in per_au.items():
        mean = pd.concat(series, axis=1).mean(axis=1)
        print(f"| {method} | " + " | ".join(f"{mean[c]:.2f}" for c in cols) + " |")

    icc = summary["icc"]
    checks = [(f"{m} > scratch", icc[m] > icc["scratch"]) for m in ("adaptation", "attention", "finetune") if m in icc and "scratch" in icc]
    if "random-backbone" in icc and "adaptation" in icc:
        checks.append(("random-backbone < adaptation (trained backbone)", icc["random-backbone"] < icc["adaptation"]))
    print("\nthe paper's ordering: " + "; ".join(f"{name}: {'yes' if ok else 'NO'}" for name, ok in checks))

    print(f"\nTable 5 columns (preset {args.preset}, s/img at batch 1, fp32, {torch.get_num_threads()} threads)")
    print("| method | params | trainable | GFLOPs | s/img |")
    print("|---|---|---|---|---|")
    for method in summary.index:
        opts = {"backbone": str(backbone)} if method in TRANSFER else {}
        model = build_model(method, aus, args.preset, **opts)
        total, trainable = count_parameters(model)
        gflops = 2 * count_macs(model, model.input_size) / 1e9
        print(f"| {method} | {total / 1e6:.2f}M | {trainable / 1e6:.3f}M | {gflops:.2f} | {seconds_per_image(method, aus, args.preset, backbone):.4f} |")
    print("\nwall time: " + ", ".join(f"{k} {v:.0f} s" for k, v in wall.items()) + f"; total {sum(wall.values()) / 60:.1f} min")


if __name__ == "__main__":
    main()
