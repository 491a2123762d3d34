"""Intra-class correlation (Shrout & Fleiss 1979), the agreement measure of the FERA challenges.

``icc`` computes every Shrout–Fleiss form from the two-way ANOVA of an n×k ratings table;
AU scoring uses ICC(3,1) with k = 2 raters (label, prediction), which reduces to
2·cov(x, y) / (var x + var y) and is computed per AU from sums (see ``auhm.metrics.sums``).
"""

from __future__ import annotations

import numpy as np

ICC_KINDS = ("1,1", "2,1", "3,1", "1,k", "2,k", "3,k")


def _normalise_kind(kind: str, k: int) -> str:
    """'3,1', 'ICC(3,1)', '3,k' or '3,<k>' (the table's number of raters) -> '3,1' / '3,k'."""
    text = str(kind).upper().replace("ICC", "").replace("(", "").replace(")", "").replace(" ", "")
    first, _, second = text.partition(",")
    if first not in {"1", "2", "3"} or second not in {"1", "K", str(k)}:
        raise ValueError(f"unknown ICC kind {kind!r} for {k} raters; use one of {', '.join(ICC_KINDS)}")
    return f"{first},{'1' if second == '1' else 'k'}"


def icc(ratings, kind: str = "3,1") -> float:
    """Shrout & Fleiss ICC of an (n targets, k raters) table; kind '1,1' … '3,k' (or '3,4' for k=4).

    Rows with a NaN are left out. Returns NaN when fewer than two complete targets remain or
    the table has no variance at all.
    """
    x = np.asarray(ratings, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] < 2:
        raise ValueError(f"ratings must be an (n targets, k ≥ 2 raters) array, got shape {x.shape}")
    kind = _normalise_kind(kind, x.shape[1])
    x = x[np.isfinite(x).all(axis=1)]
    n, k = x.shape
    if n < 2:
        return float("nan")
    grand = x.mean()
    ss_total = ((x - grand) ** 2).sum()
    ss_rows = k * ((x.mean(axis=1) - grand) ** 2).sum()  # between targets
    ss_cols = n * ((x.mean(axis=0) - grand) ** 2).sum()  # between raters (judges)
    ss_err = ss_total - ss_rows - ss_cols
    bms = ss_rows / (n - 1)
    wms = (ss_total - ss_rows) / (n * (k - 1))
    jms = ss_cols / (k - 1)
    ems = ss_err / ((n - 1) * (k - 1))
    num, den = {
        "1,1": (bms - wms, bms + (k - 1) * wms),
        "2,1": (bms - ems, bms + (k - 1) * ems + k * (jms - ems) / n),
        "3,1": (bms - ems, bms + (k - 1) * ems),
        "1,k": (bms - wms, bms),
        "2,k": (bms - ems, bms + (jms - ems) / n),
        "3,k": (bms - ems, bms),
    }[kind]
    return float(num / den) if den != 0 else float("nan")


def icc3_1(y_true, y_pred) -> float:
    """ICC(3,1) between labels and predictions of one AU (pairs with a NaN left out)."""
    return icc(np.column_stack([np.ravel(y_true), np.ravel(y_pred)]), "3,1")
