"""Bootstrap confidence intervals that resample whole videos.

Frames of one video are strongly correlated, so resampling frames would give intervals far too
narrow. Each video is reduced once to its per-AU sums (``pair_sums``); a resample is then a
vector of multinomial counts over videos, and its sums are counts @ per-video sums, so a
thousand resamples cost one small matrix product instead of a thousand passes over the frames.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auhm.metrics.sums import METRICS, mean_over_aus, pair_sums, scores_from_sums
from auhm.targets import au_name


def bootstrap_metrics(y_true, y_pred, videos, threshold: float = 1.0, n_boot: int = 1000,
                      seed: int = 0) -> dict[str, np.ndarray]:
    """Metrics of ``n_boot`` video resamples: {metric: (n_boot, N AUs + 1)}, the last column the AU mean.

    ``videos``: one integer code (or any hashable label) per frame row.
    """
    _, codes = np.unique(np.asarray(videos), return_inverse=True)
    n_videos = int(codes.max()) + 1
    per_video = pair_sums(y_true, y_pred, threshold, groups=codes, n_groups=n_videos)  # (V, S, N)
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n_videos, np.full(n_videos, 1.0 / n_videos), size=n_boot).astype(np.float64)
    sums = np.einsum("bv,vsn->bsn", counts, per_video)
    metrics = scores_from_sums(sums)
    return {m: np.concatenate([v, mean_over_aus(v)[:, None]], axis=1) for m, v in metrics.items()}


def bootstrap_scores(y_true, y_pred, videos, aus, threshold: float = 1.0, level: float = 0.95,
                     n_boot: int = 1000, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Percentile interval at ``level`` of every score, resampling videos: (low, high) tables shaped like ``au_scores``."""
    draws = bootstrap_metrics(y_true, y_pred, videos, threshold, n_boot, seed)
    columns = [au_name(a) for a in aus] + ["Avg."]
    tail = (1 - level) / 2
    low = {m: quantile_ignoring_nan(draws[m], tail) for m in METRICS}
    high = {m: quantile_ignoring_nan(draws[m], 1 - tail) for m in METRICS}
    return _frame(low, columns), _frame(high, columns)


def quantile_ignoring_nan(a: np.ndarray, q: float) -> np.ndarray:
    """Per-column quantile (linear interpolation, like numpy's default) over the finite values.

    numpy's nanpercentile falls back to a Python loop per column once any NaN is present; a
    resample can leave an AU without variance (PCC undefined), so this sorts once instead.
    """
    ordered = np.sort(np.where(np.isfinite(a), a, np.inf), axis=0)
    n = np.isfinite(a).sum(axis=0)
    position = q * np.maximum(n - 1, 0)
    below = np.floor(position).astype(np.int64)
    above = np.minimum(below + 1, np.maximum(n - 1, 0))
    lo = np.take_along_axis(ordered, below[None], axis=0)[0]
    hi = np.take_along_axis(ordered, above[None], axis=0)[0]
    with np.errstate(invalid="ignore"):
        value = lo + (position - below) * (hi - lo)
    return np.where(n > 0, value, np.nan)


def _frame(values: dict[str, np.ndarray], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_dict({m: list(values[m]) for m in METRICS}, orient="index", columns=columns)
