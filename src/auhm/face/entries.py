"""A batch's faces, one entry per frame and face, and how they become table rows (one per face,
one for a frame without a face): what both trackers hand annotate and ``auhm landmarks``."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auhm.face.base import landmark_boxes
from auhm.video import FrameBatch


@dataclass
class FaceEntries:
    """The faces of a batch of frames: one entry per (frame, face), in frame then id order."""

    indices: np.ndarray  # (n,) frame numbers of the batch
    timestamps: np.ndarray  # (n,)
    rows: np.ndarray  # (m,) row of the batch each entry belongs to
    ids: np.ndarray  # (m,) track id within the video
    confidence: np.ndarray  # (m,)
    boxes: np.ndarray  # (m, 4)
    landmarks: np.ndarray  # (m, 68, 2)
    scores: np.ndarray | None = None  # (m, N) AU intensities, when the backend's fit yields them

    @classmethod
    def from_lists(cls, batch: FrameBatch, found: list[tuple[int, int, np.ndarray, float, np.ndarray | None]]) -> "FaceEntries":
        found = sorted(found, key=lambda e: (e[0], e[1]))
        m = len(found)
        scores = None
        if m and found[0][4] is not None:
            scores = np.stack([e[4] for e in found]).astype(np.float32)
        landmarks = np.stack([e[2] for e in found]).astype(np.float32) if m else np.zeros((0, 68, 2), np.float32)
        return cls(np.asarray(batch.indices, np.int64), np.asarray(batch.timestamps, np.float64),
                   np.array([e[0] for e in found], np.int64), np.array([e[1] for e in found], np.int64),
                   np.array([e[3] for e in found], np.float32), landmark_boxes(landmarks) if m else np.zeros((0, 4), np.float32),
                   landmarks, scores)

    @classmethod
    def from_track(cls, track, scores: np.ndarray | None = None) -> "FaceEntries":
        """The one face of a single-face :class:`~auhm.face.base.FaceTrack` (id 0)."""
        rows = np.flatnonzero(np.asarray(track.success, bool) & np.isfinite(np.asarray(track.landmarks)).all(axis=(1, 2)))
        return cls(np.asarray(track.indices, np.int64), np.asarray(track.timestamps, np.float64), rows, np.zeros(len(rows), np.int64),
                   np.asarray(track.confidence, np.float32)[rows], np.asarray(track.boxes, np.float32)[rows],
                   np.asarray(track.landmarks, np.float32)[rows], None if scores is None else scores[rows])


def row_layout(n: int, rows: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How a batch's faces become table rows: one per face, in frame then id order, and one for each
    frame with no face. Returns (frame row, entry index or −1 for a frame with no face) per table row."""
    has = np.zeros(n, bool)
    has[rows] = True
    empty = np.flatnonzero(~has)
    frame_row = np.concatenate([np.asarray(rows, np.int64), empty])
    entry = np.concatenate([np.arange(len(rows)), np.full(len(empty), -1)])
    face = np.concatenate([np.asarray(ids, np.int64), np.zeros(len(empty), np.int64)])
    order = np.lexsort((face, frame_row))
    return frame_row[order], entry[order]


def faces_of(tracker, batch: FrameBatch) -> FaceEntries:
    """The faces a tracker finds in a batch: every face (:class:`~auhm.face.multitrack.MultiTracker`) or the one followed (:class:`~auhm.face.tracking.Tracker`)."""
    found = tracker.update(batch)
    return found if isinstance(found, FaceEntries) else FaceEntries.from_track(found, getattr(found, "scores", None))
