"""What the tracking workers hand the model's process: chunks of tracked, cropped faces, notes and ends."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auhm.face.crop import CropConfig, crop_face
from auhm.face.entries import faces_of
from auhm.face.linking import People
from auhm.video import FrameBatch


@dataclass
class Chunk:
    """Consecutive frames of one video with their faces (one entry per frame and face), waiting for the model."""

    job: int
    indices: np.ndarray  # (n,) frame numbers
    timestamps: np.ndarray  # (n,)
    rows: np.ndarray  # (m,) the frame (row of indices) of each face
    faces: np.ndarray  # (m,) each face's track id within its video
    confidence: np.ndarray  # (m,) float32
    boxes: np.ndarray  # (m, 4) float32
    crops: np.ndarray | None  # (m, S, S, 3) uint8 for the model; None when the tracker scored them
    intensities: np.ndarray | None = None  # (m, N): filled by the model, or already by the tracker
    worker: int = 0
    unscored: int = 0  # crops handed to the model and not scored yet

    @property
    def done(self) -> bool:
        return self.unscored == 0 and (self.crops is None or self.intensities is not None or not len(self.rows))

    def frames_with_face(self) -> np.ndarray:
        """(n,) True where the frame has at least one face."""
        has = np.zeros(len(self.indices), bool)
        has[self.rows] = True
        return has


@dataclass
class VideoEnd:
    job: int
    error: str | None = None  # the video failed: its rows are dropped
    notes: dict | None = None  # the video is written, with these notes (faces seen, a shortfall of frames)
    people: People | None = None  # who each row written is (tracks joined at the end, rows handed on), when any id changes


@dataclass
class Note:
    """Something to tell the user once about a video (worker → model's process)."""

    job: int
    text: str


@dataclass
class WorkerDone:
    """A tracking worker (thread or process) has no more videos to take."""

    worker: int


def track_and_crop(batch: FrameBatch, tracker, crop: CropConfig, job: int = 0) -> Chunk:
    """Run the tracker on a batch of frames and cut the crops of its faces (unless the tracker's
    backend scored them already: the AU model's own backbone)."""
    found = faces_of(tracker, batch)
    crops = None
    if found.scores is None:
        crops = np.empty((len(found.rows), crop.size, crop.size, 3), np.uint8)
        for k, r in enumerate(found.rows):
            crops[k] = crop_face(batch.frames[r], found.landmarks[k], crop)[0]
    return Chunk(job, found.indices, found.timestamps, found.rows, found.ids, found.confidence, found.boxes, crops,
                 intensities=found.scores)
