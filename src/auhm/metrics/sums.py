"""Per-AU scores of predictions against labels, computed from per-AU sums.

Every metric (ICC(3,1), MSE, RMSE, MAE, Pearson r, F1 of occurrence) follows from eleven sums
per AU, so scoring a million frames is a few vectorised passes, and bootstrap resamples of whole
videos are a matrix product of resample counts with per-video sums (``auhm.metrics.bootstrap``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auhm.targets import au_name

METRICS = ("ICC", "MSE", "RMSE", "MAE", "PCC", "F1", "n")

# Sums of one (label x, prediction y) pair set, per AU. x and y are centred on their global
# means (same shift for every group) so that variances do not cancel catastrophically;
# d = x - y is not shifted. tp / fp / fn count occurrence (value ≥ threshold).
SUM_NAMES = ("n", "sx", "sy", "sxx", "syy", "sxy", "sdd", "sad", "tp", "fp", "fn")
_S = {name: i for i, name in enumerate(SUM_NAMES)}

# Variances below this (intensity units²) are treated as a constant rater: PCC is undefined.
_ZERO_VARIANCE = 1e-12


def _as_2d(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def pair_sums(y_true, y_pred, threshold: float = 1.0, groups=None, n_groups: int | None = None) -> np.ndarray:
    """Sums (``SUM_NAMES``) per AU of the pairs where both sides are finite.

    y_true, y_pred: (n,) or (n, N). Returns (len(SUM_NAMES), N), or with ``groups`` (n integer
    codes in [0, n_groups)) one block per group: (n_groups, len(SUM_NAMES), N).
    """
    t, p = _as_2d(y_true), _as_2d(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"labels {t.shape} and predictions {p.shape} differ in shape")
    if groups is None:
        def total(a):
            return a.sum(axis=0, dtype=np.float64)

        def dot(a, b):
            return np.einsum("ij,ij->j", a, b)  # no (n, N) temporary

        def count(mask):
            return np.count_nonzero(mask, axis=0).astype(np.float64)
    else:
        codes = np.asarray(groups)
        if codes.shape != (t.shape[0],):
            raise ValueError("groups must hold one code per row")
        n_groups = int(codes.max()) + 1 if n_groups is None else n_groups
        if not np.all(codes[:-1] <= codes[1:]):
            order = np.argsort(codes, kind="stable")
            t, p, codes = t[order], p[order], codes[order]
        present, starts = np.unique(codes, return_index=True)

        def total(a):
            out = np.zeros((n_groups, a.shape[1]))
            out[present] = np.add.reduceat(a.astype(np.float64, copy=False), starts, axis=0)
            return out

        def dot(a, b):
            return total(a * b)

        count = total

    valid = np.isfinite(t) & np.isfinite(p)
    t0 = np.where(valid, t, 0.0)
    p0 = np.where(valid, p, 0.0)
    n_valid = np.maximum(np.count_nonzero(valid, axis=0), 1)
    xc = t0 - t0.sum(axis=0) / n_valid
    yc = p0 - p0.sum(axis=0) / n_valid
    xc[~valid] = 0.0
    yc[~valid] = 0.0
    d = t0 - p0  # zero where either side is missing
    true_on = valid & (t0 >= threshold)
    pred_on = valid & (p0 >= threshold)
    parts = [
        count(valid), total(xc), total(yc), dot(xc, xc), dot(yc, yc), dot(xc, yc), dot(d, d), total(np.abs(d)),
        count(true_on & pred_on), count(pred_on & ~true_on), count(true_on & ~pred_on),
    ]
    return np.stack(parts, axis=-2)


def scores_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from ``pair_sums`` output (any leading shape (..., len(SUM_NAMES), N))."""
    s = {name: sums[..., i, :] for name, i in _S.items()}
    n = s["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = s["sx"] / n, s["sy"] / n
        vx = np.maximum(s["sxx"] / n - mx * mx, 0.0)
        vy = np.maximum(s["syy"] / n - my * my, 0.0)
        vx = np.where(vx < _ZERO_VARIANCE, 0.0, vx)
        vy = np.where(vy < _ZERO_VARIANCE, 0.0, vy)
        cov = np.where((vx == 0) | (vy == 0), 0.0, s["sxy"] / n - mx * my)
        # ICC(3,1), k = 2: (BMS - EMS) / (BMS + EMS) = 2 cov / (var x + var y).
        icc = np.where(n >= 2, 2 * cov / (vx + vy), np.nan)
        pcc = np.where(n >= 2, cov / np.sqrt(vx * vy), np.nan)
        mse = s["sdd"] / n
        f1_den = 2 * s["tp"] + s["fp"] + s["fn"]
        f1 = np.where(f1_den > 0, 2 * s["tp"] / f1_den, np.nan)
        return {
            "ICC": icc,
            "MSE": mse,
            "RMSE": np.sqrt(mse),
            "MAE": s["sad"] / n,
            "PCC": pcc,
            "F1": f1,
            "n": n,
        }


def mean_over_aus(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis (AUs), NaNs left out; NaN where every AU is NaN."""
    finite = np.isfinite(a)
    count = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, a, 0.0).sum(axis=-1) / count, np.nan)


def scores_frame(metrics: dict[str, np.ndarray], aus) -> pd.DataFrame:
    """One table: rows ``METRICS``, columns AU01 … and Avg. (the mean over AUs, NaNs left out)."""
    columns = [au_name(a) for a in aus]
    rows = {m: list(metrics[m]) + [float(mean_over_aus(metrics[m]))] for m in METRICS}
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns + ["Avg."])


def au_scores(y_true, y_pred, aus, threshold: float = 1.0) -> pd.DataFrame:
    """Rows ICC, MSE, RMSE, MAE, PCC, F1, n; columns AU01 … and Avg.

    y_true, y_pred: (n frames, N AUs); a frame is left out of an AU's scores when either side
    is NaN there. F1 scores occurrence, intensity ≥ ``threshold``.
    """
    aus = tuple(aus)
    t, p = _as_2d(y_true), _as_2d(y_pred)
    if t.shape[1] != len(aus):
        raise ValueError(f"{t.shape[1]} AU columns but {len(aus)} AUs named")
    return scores_frame(scores_from_sums(pair_sums(t, p, threshold)), aus)
