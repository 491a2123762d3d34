"""Square face crops from 68 landmarks, with the affine kept to map points and maps back.

One crop convention is used everywhere (prepare, train, annotate, render) and saved in every
checkpoint, so a model always sees faces cut the way it was trained on.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class CropConfig:
    size: int = 256  # output side in pixels
    scale: float = 1.3  # crop side / larger side of the landmarks' bounding box
    shift_y: float = -0.08  # centre shift, in units of the box height (up = negative: keeps the brows' forehead)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "CropConfig":
        return cls(**{k: d[k] for k in ("size", "scale", "shift_y") if k in d})


def crop_square(landmarks: np.ndarray, config: CropConfig) -> np.ndarray:
    """(cx, cy, side) of the crop square for (…, 68, 2) landmarks in frame pixels."""
    lo = landmarks.min(axis=-2)
    hi = landmarks.max(axis=-2)
    w, h = hi[..., 0] - lo[..., 0], hi[..., 1] - lo[..., 1]
    cx = (lo[..., 0] + hi[..., 0]) / 2
    cy = (lo[..., 1] + hi[..., 1]) / 2 + config.shift_y * h
    side = np.maximum(np.maximum(w, h) * config.scale, 8.0)
    return np.stack([cx, cy, side], axis=-1).astype(np.float64)


def crop_affine(square: np.ndarray, size: int) -> np.ndarray:
    """2×3 matrix taking frame pixels to crop pixels for one (cx, cy, side) square."""
    cx, cy, side = (float(v) for v in square)
    s = size / side
    return np.array([[s, 0.0, size / 2 - s * cx], [0.0, s, size / 2 - s * cy]], dtype=np.float64)


def invert_affine(m: np.ndarray) -> np.ndarray:
    return cv2.invertAffineTransform(np.asarray(m, np.float64))


def warp_points(points: np.ndarray, m: np.ndarray) -> np.ndarray:
    """Apply a 2×3 affine to (…, 2) points."""
    m = np.asarray(m, np.float64)
    return points @ m[:, :2].T + m[:, 2]


def crop_image(frame: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    """Cut a size×size crop (black outside the frame)."""
    return cv2.warpAffine(frame, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


def crop_face(frame: np.ndarray, landmarks: np.ndarray, config: CropConfig) -> tuple[np.ndarray, np.ndarray]:
    """The crop of one face and the frame→crop affine."""
    m = crop_affine(crop_square(landmarks, config), config.size)
    return crop_image(frame, m, config.size), m
