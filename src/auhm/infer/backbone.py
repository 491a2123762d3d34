"""Tracking with the AU model's own backbone landmarks (``--landmarks auto`` on a transfer checkpoint).

:class:`BackboneBackend` is a landmark backend like the others, so the trackers follow faces
with it as with dlib: ``fit`` cuts each frame's crop around the face's last landmarks, runs the
AU model, and reads the face's landmarks off its backbone; where they put the face more than
``drift`` of the crop side away from where the crop was cut, the frame is cut again from them
and scored again, at most ``REFINE_ROUNDS`` times. The AU intensities of each final crop come
with it (``last_scores``), so one forward gives both. A face is present when the landmarks'
mean peak reaches the checkpoint's presence threshold. Detection is a full-frame detector's.

Each crop is a function of the frames and the fits before it in the video, never of timing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from auhm.face.base import Detection, LandmarkBackend
from auhm.face.crop import CropConfig, crop_face, crop_square

REFINE_ROUNDS = 3


def to_frame(points: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """(k, 68, 2) crop points → frame points through each (k, 2, 3) frame → crop affine (scale + shift)."""
    scale = affines[:, 0, 0][:, None, None]
    return (points - affines[:, None, :, 2]) / scale


def square_of(affine: np.ndarray, size: int) -> np.ndarray:
    """(…, 3) cx, cy, side in frame pixels of the squares (…, 2, 3) frame → crop affines cut."""
    scale = affine[..., 0, 0]
    return np.stack([(size / 2 - affine[..., 0, 2]) / scale, (size / 2 - affine[..., 1, 2]) / scale, size / scale], -1)


def drifted(crop_points: np.ndarray, frame_points: np.ndarray, affines: np.ndarray, crop: CropConfig, drift: float) -> np.ndarray:
    """(k,) True where the crop the landmarks give differs from the one they came from by more than
    ``drift`` of its side, or where the face touches the crop's edge (it then looks smaller than it is)."""
    used = square_of(affines, crop.size)
    now = crop_square(frame_points, crop)
    edge = 0.03 * crop.size
    at_edge = (crop_points.min(axis=(1, 2)) < edge) | (crop_points.max(axis=(1, 2)) > crop.size - 1 - edge)
    return at_edge | (np.abs(now - used).max(-1) > drift * used[:, 2])


class BackboneBackend(LandmarkBackend):
    """The AU model's backbone as a landmark backend; ``detect`` is a full-frame detector's."""

    name = "backbone"
    batched_fit = True  # fit re-cuts around its own estimate

    def __init__(self, predictor, detector: Callable[[np.ndarray], list[Detection]], threshold: float, drift: float = 0.10):
        self.predictor = predictor
        self.detector = detector
        self.min_confidence = float(threshold)
        self.drift = drift
        self.crop: CropConfig = predictor.crop
        self.last_scores: np.ndarray | None = None  # (n, N) AU intensities of the last fit's final crops
        self.forwards = 0  # crops scored, for reports and tests

    @property
    def sure_score(self) -> float:
        """Its detector's: the score under which a find is a candidate (HOG's under its own threshold)."""
        return getattr(self.detector, "sure_score", 0.0)

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        return [self.detector(frame) for frame in frames]

    def detect_new(self, frame: np.ndarray, followed: np.ndarray) -> list[Detection]:
        if getattr(self.detector, "leaves_out", False):
            return self.detector(frame, leave_out=followed)
        return self.detector(frame)

    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.fit_rows(frames, np.arange(len(frames)), regions)

    def fit_rows(self, frames: np.ndarray, rows: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        regions = np.asarray(regions, np.float64)
        points = list(regions if regions.ndim == 3 else regions.reshape(-1, 2, 2))  # landmarks, or a box's corners
        n, size = len(rows), self.crop.size
        landmarks = np.full((n, 68, 2), np.nan, np.float32)
        confidence = np.zeros(n, np.float32)
        scores = np.full((n, len(self.predictor.aus)), np.nan, np.float32)
        todo, round_ = np.arange(n), 0
        while len(todo):
            crops = np.empty((len(todo), size, size, 3), np.uint8)
            affines = np.empty((len(todo), 2, 3))
            for k, r in enumerate(todo):
                crops[k], affines[k] = crop_face(frames[rows[r]], points[r], self.crop)
            pred = self.predictor(crops)
            self.forwards += len(todo)
            frame_points = to_frame(pred.landmarks.astype(np.float64), affines)
            landmarks[todo] = frame_points
            confidence[todo] = pred.landmark_confidence
            scores[todo] = pred.intensities
            round_ += 1
            if round_ > REFINE_ROUNDS:
                break
            again = drifted(pred.landmarks, frame_points, affines, self.crop, self.drift)
            again &= np.isfinite(frame_points).all(axis=(1, 2)) & (pred.landmark_confidence >= self.min_confidence)
            for k in np.flatnonzero(again):
                points[todo[k]] = frame_points[k]
            todo_next = todo[again]
            todo = todo_next
        self.last_scores = scores
        return landmarks, np.clip(confidence, 0.0, 1.0)

    def metadata(self) -> dict:
        return {"backend": self.name, "presence_threshold": self.min_confidence}
