"""How compressed an AU checkpoint's intensities are, and what the fitted read-out factor changes.

For each AU, on the checkpoint's training crops and on held-out crops: the slope of the plain
read-out (each map's maximum) against the label, the factor training fitted, and ICC(3,1) / PCC
with and without it.

    python bench/readout.py demo_out/runs/adaptation/best.pt demo_out/prepared
    python bench/readout.py RUN/best.pt HELDOUT_PREPARED --heldout-split all
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from auhm.metrics import au_scores
from auhm.models import load_checkpoint
from auhm.targets import au_name
from auhm.train.augment import ShardView
from auhm.train.prepared import load_prepared, split_corpus
from auhm.train.evaluate import predict
from auhm.train.readout import training_sample


def slope(peaks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-AU least-squares slope of the read-out on the label (1: the label's scale; 0: flat)."""
    out = []
    for j in range(labels.shape[1]):
        ok = ~np.isnan(labels[:, j])
        y, p = labels[ok, j], peaks[ok, j]
        out.append(np.polyfit(y, p, 1)[0] if ok.sum() > 2 and y.std() > 0 else np.nan)
    return np.array(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint", type=Path)
    ap.add_argument("data", type=Path, help="the prepared corpus it was trained on (or another, with --heldout-split)")
    ap.add_argument("--heldout-split", default=None, help="split of DATA to score as held out (default: the checkpoint's validation subjects)")
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args()
    model, info = load_checkpoint(args.checkpoint, task="au")
    device = torch.device("cpu")
    corpus = load_prepared(args.data, info["aus"])
    shards = corpus.shards
    tc = info.get("train_config") or {}
    split = split_corpus(corpus.manifest, shards, info.get("fold"), tc.get("folds"), tc.get("seed", 0), tc.get("holdout_fraction", 0.2))
    held = np.arange(len(shards)) if args.heldout_split == "all" else (np.flatnonzero(shards.split == args.heldout_split) if args.heldout_split else split.val)
    sets = {"training crops": training_sample(split.train), "held-out crops": held}
    scale = model.intensity_scale.numpy()
    cols = [au_name(a).replace("AU0", "AU") for a in model.aus]
    print(f"{args.checkpoint}: {info['method']}, fitted factor per AU: " + ", ".join(f"{c} {s:.2f}" for c, s in zip(cols, scale)))
    for name, idx in sets.items():
        view = ShardView(shards, idx, model.input_size)
        raw = predict(model, view, args.batch_size, device, "fp32", scaled=False)
        scaled = predict(model, view, args.batch_size, device, "fp32")
        labels = shards.labels[idx]
        plain, fitted = au_scores(labels, raw, model.aus), au_scores(labels, scaled, model.aus)
        print(f"\n{name} ({len(idx)})")
        print("| | " + " | ".join(cols) + " | Avg. |")
        print("|---|" + "---|" * (len(cols) + 1))
        s = slope(raw, labels)
        print("| slope of the maximum on the label | " + " | ".join(f"{v:.2f}" for v in s) + f" | {np.nanmean(s):.2f} |")
        for label, scores in (("ICC, maximum", plain), ("ICC, maximum × factor", fitted), ("PCC", fitted)):
            row = "PCC" if label == "PCC" else "ICC"
            print(f"| {label} | " + " | ".join(f"{scores.loc[row, c]:.2f}" for c in scores.columns[:-1]) + f" | {scores.loc[row, 'Avg.']:.2f} |")


if __name__ == "__main__":
    main()
