"""Telling faces apart by their colours: the multi-face tracker's re-identification.

A face's look is its colour histogram (32 hues × 16 saturations: bins fine enough to tell two
skin tones apart, ``bench/looks.py``) inside its box, leaving out what other
faces' boxes cover (one of them may stand in front of it); a track's look is the mean of its
face's looks at detections, each absorbed only when it agrees with the mean (a fit that takes in
part of another face does not drift it). Two looks are compared by Bhattacharyya distance.
"""

from __future__ import annotations

import cv2
import numpy as np

from auhm.face.base import landmark_boxes
from auhm.face.boxes import box_points

BINS = (32, 16)  # hue × saturation bins of a look


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
    hist = cv2.calcHist([hsv], [0, 1], mask, list(BINS), [0, 180, 0, 256]).ravel()
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def look_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two colour histograms: 0 the same, 1 nothing in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def nearest_look(look: np.ndarray, candidates: list[tuple[np.ndarray, int, object]], distance: float, margin: float):
    """Of ``candidates`` (look, tie-break key, item), the item whose look is nearest ``look``, when
    nearer than ``distance`` and at least ``margin`` nearer than the next; else None."""
    if not candidates:
        return None
    distances = sorted(((look_distance(look, other), key, item) for other, key, item in candidates), key=lambda d: d[:2])
    best, nearest = distances[0][0], distances[0][2]
    second = distances[1][0] if len(distances) > 1 else np.inf
    return nearest if best < distance and second - best >= margin else None


def looks_alike(frame: np.ndarray, looks: list[np.ndarray | None], boxes: np.ndarray, veto: float) -> np.ndarray:
    """(looks, boxes) 1 where the face in a box may be the one of that look (or either has none),
    0 where their distance passes ``veto``."""
    alike = np.ones((len(looks), len(boxes)))
    found = [appearance(frame, box_points(box)) for box in boxes]
    for a, look in enumerate(looks):
        for b, other in enumerate(found):
            if look is not None and other is not None and look_distance(look, other) > veto:
                alike[a, b] = 0.0
    return alike


def absorbed(mean: np.ndarray | None, count: int, look: np.ndarray | None, distance: float) -> tuple[np.ndarray | None, int]:
    """(mean, count) after ``look``: averaged in, unless it is None or farther than ``distance`` from
    the mean (another face mixed in)."""
    if look is None:
        return mean, count
    if mean is None:
        return look, 1
    if look_distance(mean, look) > distance:
        return mean, count
    return mean + (look - mean) / (count + 1), count + 1
