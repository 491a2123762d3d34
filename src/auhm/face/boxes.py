"""Boxes (x0, y0, x1, y1, frame pixels): overlap, optimal one-to-one matching, and what a face looks like inside one.

The tracker matches detections to tracks with these, and ``auhm.metrics.tracking`` matches a
tracker's boxes to the truth with the same ones.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.optimize import linear_sum_assignment

from auhm.face.base import landmark_boxes


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


def appearance(frame: np.ndarray, points: np.ndarray, hidden: np.ndarray | None = None, least: float = 0.5) -> np.ndarray | None:
    """A face's colour histogram (hue × saturation, normalised) inside the box of ``points``
    (landmarks, or a box's corners), leaving out the ``hidden`` boxes (other faces, which may stand
    in front of it); None when that box is off the frame or less than ``least`` of it is left."""
    h, w = frame.shape[:2]
    x0, y0, x1, y1 = (int(round(float(v))) for v in landmark_boxes(np.asarray(points, np.float64)))
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    mask = None
    if hidden is not None and len(hidden):
        mask = np.full((y1 - y0, x1 - x0), 255, np.uint8)
        for bx0, by0, bx1, by1 in np.asarray(hidden, np.float64).reshape(-1, 4):
            mask[max(0, int(by0) - y0):max(0, int(np.ceil(by1)) - y0), max(0, int(bx0) - x0):max(0, int(np.ceil(bx1)) - x0)] = 0
        if np.count_nonzero(mask) < least * mask.size:
            return None
    hsv = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], mask, [16, 8], [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two colour histograms: 0 the same, 1 nothing in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))
