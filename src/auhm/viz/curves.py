"""Training curves: the loss and the validation metric per epoch of a run."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from auhm.io import atomic_path

METRIC_LABELS = {"val_nme": "validation NME (inter-ocular)", "val_icc": "validation ICC(3,1), mean over AUs"}


def training_curves(history: pd.DataFrame, metric: str, out: Path) -> Path:
    """curves.png of a run: training loss (log scale when positive) and ``metric`` against the epoch."""
    fig = Figure(figsize=(9, 3.2))
    a, b = fig.subplots(1, 2)
    a.plot(history["epoch"], history["train_loss"], marker="o")
    a.set(xlabel="epoch", ylabel="training loss", yscale="log" if (history["train_loss"] > 0).all() else "linear")
    b.plot(history["epoch"], history[metric], marker="o", color="tab:orange")
    b.set(xlabel="epoch", ylabel=METRIC_LABELS.get(metric, metric))
    fig.tight_layout()
    with atomic_path(Path(out)) as tmp:
        fig.savefig(tmp, dpi=100, format="png")
    return Path(out)
