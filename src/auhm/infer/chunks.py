"""What the tracking workers hand the model's process: chunks of tracked, cropped frames and ends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auhm.face.crop import CropConfig, crop_face
from auhm.video import FrameBatch


@dataclass
class Chunk:
    """Consecutive frames of one video, tracked and cropped, waiting for the model."""

    job: int
    indices: np.ndarray
    timestamps: np.ndarray
    success: np.ndarray  # (n,) bool
    confidence: np.ndarray  # (n,) float32
    boxes: np.ndarray  # (n, 4) float32
    rows: np.ndarray  # (k,) rows of this chunk that have a crop
    crops: np.ndarray  # (k, S, S, 3) uint8
    affines: np.ndarray  # (k, 2, 3) frame → crop
    frames: np.ndarray | None = None  # (k, H, W, 3), kept only for self-tracking refinement
    intensities: np.ndarray | None = None  # (n, N) filled by the model
    taken: int = 0  # crops handed to the model so far
    scored: int = 0

    @property
    def done(self) -> bool:
        return self.scored >= len(self.rows)


@dataclass
class VideoEnd:
    job: int
    error: str | None = None  # the video failed: its rows are dropped
    notes: dict | None = None  # the video is written, with these notes (faces seen, a shortfall of frames)


@dataclass
class WorkerDone:
    """A tracking worker (thread or process) has no more videos to take."""

    worker: int


def track_and_crop(batch: FrameBatch, tracker, crop: CropConfig, job: int = 0) -> Chunk:
    """Run the tracker on a batch of frames and cut the crops of the frames with a face."""
    track = tracker.update(batch)
    n = len(batch)
    success = np.asarray(track.success, bool) & np.isfinite(np.asarray(track.landmarks)).all(axis=(1, 2))
    rows = np.flatnonzero(success)
    crops = np.empty((len(rows), crop.size, crop.size, 3), np.uint8)
    affines = np.empty((len(rows), 2, 3), np.float64)
    for k, r in enumerate(rows):
        crops[k], affines[k] = crop_face(batch.frames[r], np.asarray(track.landmarks[r]), crop)
    boxes = np.full((n, 4), np.nan, np.float32)
    if getattr(track, "boxes", None) is not None:
        boxes[:] = np.asarray(track.boxes, np.float32)
    boxes[~success] = np.nan
    confidence = np.asarray(track.confidence, np.float32).copy()
    return Chunk(job, batch.indices, batch.timestamps, success, confidence, boxes, rows, crops, affines)
