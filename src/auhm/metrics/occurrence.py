"""Scores of occurrence labels (0/1, as Aff-Wild2 codes them): F1, accuracy and the threshold-free
AUC per AU, each beside the base rate, since on 0/1 labels the intensity agreement measures
(ICC, MSE, …) measure mostly how far a 0–5 prediction is from 0 and 1."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import rankdata

from auhm.metrics.sums import mean_over_aus
from auhm.targets import au_name

OCCURRENCE_METRICS = ("F1", "Accuracy", "AUC", "Base rate", "n")


def is_occurrence(y_true) -> bool:
    """True when every known label is 0 or 1 and both occur: occurrence coding, not intensity."""
    values = np.asarray(y_true, np.float64)
    known = values[np.isfinite(values)]
    return known.size > 0 and bool(np.isin(known, (0.0, 1.0)).all()) and (known == 1).any() and (known == 0).any()


def auc(present: np.ndarray, score: np.ndarray) -> float:
    """Area under the ROC curve: the chance that a frame with the AU scores above one without it
    (ties count half), from the rank sum; NaN when either class is empty."""
    present = np.asarray(present, bool)
    n_pos, n_neg = int(present.sum()), int((~present).sum())
    if not n_pos or not n_neg:
        return float("nan")
    ranks = rankdata(score)
    return float((ranks[present].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def occurrence_scores(y_true, y_pred, aus, threshold: float = 1.0) -> pd.DataFrame:
    """Rows F1, Accuracy, AUC, Base rate, n; columns AU01 … and Avg. A label is present when it is 1,
    a prediction when it is ≥ ``threshold``; AUC ranks the predictions themselves. A frame is left
    out of an AU's scores where either side is null."""
    t, p = np.asarray(y_true, np.float64), np.asarray(y_pred, np.float64)
    rows: dict[str, list[float]] = {m: [] for m in OCCURRENCE_METRICS}
    for j in range(t.shape[1]):
        ok = np.isfinite(t[:, j]) & np.isfinite(p[:, j])
        truth, score = t[ok, j] >= 0.5, p[ok, j]
        said = score >= threshold
        tp, fp, fn = int((truth & said).sum()), int((~truth & said).sum()), int((truth & ~said).sum())
        n = int(ok.sum())
        rows["F1"].append(2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan"))
        rows["Accuracy"].append(float((truth == said).mean()) if n else float("nan"))
        rows["AUC"].append(auc(truth, score))
        rows["Base rate"].append(float(truth.mean()) if n else float("nan"))
        rows["n"].append(float(n))
    columns = [au_name(a) for a in aus]
    table = {m: v + [float(mean_over_aus(np.asarray(v, np.float64)))] for m, v in rows.items()}
    return pd.DataFrame.from_dict(table, orient="index", columns=columns + ["Avg."])
