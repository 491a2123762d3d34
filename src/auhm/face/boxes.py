"""Boxes (x0, y0, x1, y1, frame pixels): overlap and optimal one-to-one matching.

The tracker matches detections to tracks with these, and ``auhm.metrics.tracking`` matches a
tracker's boxes to the truth with the same ones.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(n, m) intersection over union of boxes (n, 4) and (m, 4); 0 where both are empty."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(-1)
    area = lambda x: np.clip(x[:, 2:] - x[:, :2], 0, None).prod(-1)  # noqa: E731
    union = area(a)[:, None] + area(b)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def match_overlaps(overlap: np.ndarray, least: float) -> list[tuple[int, int]]:
    """Pairs (row, column) of the assignment that maximises the summed overlap, each ≥ ``least``."""
    if not overlap.size:
        return []
    rows, cols = linear_sum_assignment(-overlap)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if overlap[r, c] >= least]


def match_boxes(a: np.ndarray, b: np.ndarray, iou: float = 0.5) -> list[tuple[int, int]]:
    """One-to-one pairs (index in ``a``, index in ``b``) of IoU ≥ ``iou``, the total IoU the largest."""
    return match_overlaps(box_iou(a, b), iou)


def box_points(box: np.ndarray) -> np.ndarray:
    """A detector box as the two corners the crop convention squares (as it squares landmarks)."""
    return np.asarray(box, np.float64).reshape(2, 2)
