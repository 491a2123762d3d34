"""The landmark-backend interface and the per-frame result (backends register in :mod:`.registry`).

A backend does two things on batches of RGB frames: ``detect`` faces (first frame, and when
the track is lost) and ``fit`` 68 landmarks inside a given region. The trackers
(:class:`~auhm.face.tracking.Tracker`: one face; :class:`~auhm.face.multitrack.MultiTracker`: every
face) decide which to call and hold the tracks; a backend keeps at most a per-video calibration
(dlib: where HOG puts its box relative to the landmarks).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

N_LANDMARKS = 68

# (box (4,) x0, y0, x1, y1 in frame pixels, score in (0, 1])
Detection = tuple[np.ndarray, float]


class BackendUnavailable(RuntimeError):
    """A backend whose library or weights are missing; the message says what to install where."""


@dataclass
class FaceTrack:
    """One face per frame for a batch of frames; NaN box and landmarks where no face was found."""

    indices: np.ndarray  # (n,) int64 frame numbers
    timestamps: np.ndarray  # (n,) float64 s
    success: np.ndarray  # (n,) bool
    confidence: np.ndarray  # (n,) float32
    boxes: np.ndarray  # (n, 4) float32 x0, y0, x1, y1 frame pixels
    landmarks: np.ndarray  # (n, 68, 2) float32 frame pixels
    scores: np.ndarray | None = None  # (n, N) AU intensities, where the backend's fit yields them (the AU model's backbone)

    def __len__(self) -> int:
        return len(self.indices)

    @classmethod
    def empty(cls, indices: np.ndarray, timestamps: np.ndarray) -> "FaceTrack":
        """A track of ``n`` frames with no face found yet."""
        n = len(indices)
        return cls(
            indices=np.asarray(indices, np.int64),
            timestamps=np.asarray(timestamps, np.float64),
            success=np.zeros(n, bool),
            confidence=np.zeros(n, np.float32),
            boxes=np.full((n, 4), np.nan, np.float32),
            landmarks=np.full((n, N_LANDMARKS, 2), np.nan, np.float32),
        )


def landmark_boxes(landmarks: np.ndarray) -> np.ndarray:
    """(…, 4) x0, y0, x1, y1 bounding boxes of (…, 68, 2) landmarks: the box every backend reports."""
    lo, hi = landmarks.min(axis=-2), landmarks.max(axis=-2)
    return np.concatenate([lo, hi], axis=-1).astype(np.float32)


def region_boxes(regions: np.ndarray) -> np.ndarray:
    """Boxes (n, 4) from what ``fit`` is given: boxes (n, 4) as they are, landmarks (n, 68, 2) bounded."""
    regions = np.asarray(regions, np.float64)
    return regions if regions.ndim == 2 else landmark_boxes(regions).astype(np.float64)


class LandmarkBackend(ABC):
    """Face detection and 68-point landmark fitting on batches of RGB uint8 (n, H, W, 3) frames."""

    name: str = "?"
    min_confidence: float = 0.3  # fit confidence below which the tracker calls the face lost
    batched_fit: bool = False  # fit recovers from the previous frame's region (re-crops): a batch may share it
    verify_every: int = 1  # a fit's presence check is costly: the tracker may skip it on all but every k-th frame
    sure_score: float = 0.0  # a find of its search scored under this is a candidate the detector is unsure of (0: every find is sure)

    def start(self, video: str) -> None:
        """A new video begins (the truth backend needs its path); nothing by default."""

    def read(self, indices: np.ndarray, timestamps: np.ndarray) -> FaceTrack | None:
        """Backends that know every frame's answer without looking at pixels return it here."""
        return None

    @abstractmethod
    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        """Faces in each frame: a list of (box, score) per frame, score in (0, 1]."""

    def detect_new(self, frame: np.ndarray, followed: np.ndarray) -> list[Detection]:
        """Faces in ``frame``, where those in the ``followed`` boxes (n, 4) may be left out: the
        multi-face tracker's scheduled search, which needs only the faces it does not follow yet.
        This default finds them all (the tracker matches them itself); a detector that can leave
        them out cheaply (a cascade) saves its cost."""
        return self.detect(frame[None])[0]

    @abstractmethod
    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Landmarks (n, 68, 2) frame px and confidence (n,) in [0, 1] of the face in each region.

        ``regions`` are detector boxes (n, 4) or the previous frame's landmarks (n, 68, 2).
        """

    def fit_rows(self, frames: np.ndarray, rows: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``fit`` on ``frames[rows]``: one call for several faces of the same frames (a row may
        repeat); a backend that crops each frame itself overrides it to spare the copy."""
        return self.fit(frames[np.asarray(rows)], regions)

    def fit_unchecked(self, frames: np.ndarray, regions: np.ndarray) -> np.ndarray:
        """Landmarks (n, 68, 2) without the presence check behind ``fit``'s confidence.

        Only worth overriding where that check costs more than the fit (``verify_every`` > 1);
        the tracker then confirms the face with ``fit`` every ``verify_every`` frames.
        """
        return self.fit(frames, regions)[0]

    def metadata(self) -> dict:
        """What to record in an output table's metadata so that it says how it was made."""
        return {"backend": self.name}
