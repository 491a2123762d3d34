"""Tracking with the AU model's own backbone landmarks (``--landmarks auto`` on a transfer checkpoint).

It runs in the decode workers; the model's thread only scores crops, many videos' at once, and
sends each chunk's landmarks back (:class:`Scored`). A worker cuts a chunk's crops ahead, from
the latest landmarks the model returned for the video moved on by the face's recent motion, or
from a full-frame detection where there are none. When the scores come back, each frame is:

- settled, when its landmarks are confident and put the face where its crop was cut (within
  ``drift`` of the crop side);
- re-cut from its own landmarks and scored again (:class:`Recut`, batched with other videos'
  crops), when they are confident but the face moved, up to ``REFINE_ROUNDS`` times;
- searched afresh with the detector when they are not confident (below the checkpoint's
  presence threshold: not a face). A face found is re-cut and scored; none found is no face.

After a search that finds nothing the next waits 1, 2, 4 … frames, at most ``wait``; a search
that finds a face gives crops to every frame of its batch, the ones before it too (the model's
landmarks then tell where it is there, and where it is not). When the detector keeps finding faces that the model's landmarks
reject, those landmarks cannot be trusted on this video: it goes on with the detector's own
tracker (:class:`Note` says so once). The lag between cutting and scoring costs forwards,
never accuracy: every frame's crop is finally the one its own landmarks give.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from auhm.face.base import landmark_boxes
from auhm.face.crop import CropConfig, crop_face, crop_square
from auhm.face.tracking import choose_detection
from auhm.face.tracking import Tracker
from auhm.infer.chunks import Chunk, track_and_crop
from auhm.video import FrameBatch

REFINE_ROUNDS = 3
DOUBTS_BEFORE_FALLBACK = 3  # faces the detector found and the landmarks rejected, before the video falls back
VELOCITY_SPAN = 4  # frames: landmarks further apart than this give no velocity
MAX_LEAD = 32  # frames: the motion is carried at most this far


# ── messages between the model's thread and a worker ───────────────────────────────────────
@dataclass
class Scored:
    """The model's landmarks for some crops of a chunk (model → worker)."""

    job: int
    seq: int
    rows: np.ndarray  # (k,) rows of the chunk
    landmarks: np.ndarray  # (k, 68, 2) crop pixels
    confidence: np.ndarray  # (k,)


@dataclass
class Recut:
    """Crops cut again for some rows of a chunk (worker → model): score them, replacing the earlier scores."""

    job: int
    seq: int
    rows: np.ndarray
    crops: np.ndarray


@dataclass
class Settled:
    """A chunk's final faces (worker → model): its rows can be written once every crop is scored."""

    job: int
    seq: int
    success: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray


@dataclass
class Note:
    """Something to tell the user once about a video (worker → model's process)."""

    job: int
    text: str


# ── the worker's side ───────────────────────────────────────────────────────────────────────
@dataclass
class FaceState:
    """Where a video's face was last seen by the model, and when the detector may search next."""

    frame: int = -1
    points: np.ndarray | None = None  # (68, 2) landmarks, or (2, 2) corners of a detector box
    velocity: np.ndarray | None = None  # px per frame
    next_search: int = 0
    misses: int = 0  # searches in a row that found nothing
    found: int = 0  # faces the detector found whose crops the model then scored
    searched: bool = False  # a search ran on this video
    faces_seen: int = 0  # most faces the detector found in one frame (one is followed)
    doubted: int = 0  # … and whose landmarks it did not trust

    def predict(self, frame: int) -> np.ndarray | None:
        if self.points is None or self.velocity is None:
            return self.points
        return self.points + self.velocity * min(max(frame - self.frame, 0), MAX_LEAD)

    def seen(self, frame: int, points: np.ndarray) -> None:
        if frame < self.frame:
            return
        same = self.points is not None and self.points.shape == points.shape
        self.velocity = (points - self.points).mean(0) / (frame - self.frame) if same and 0 < frame - self.frame <= VELOCITY_SPAN else None
        self.frame, self.points = frame, points

    def lost(self, frame: int) -> None:
        if frame >= self.frame:
            self.frame, self.points, self.velocity = frame, None, None


@dataclass
class _Held:
    """A chunk sent to be scored whose faces are not all settled: its frames stay here until then."""

    batch: FrameBatch
    success: np.ndarray
    confidence: np.ndarray
    boxes: np.ndarray
    affines: np.ndarray  # (n, 2, 3) of each row's latest crop
    rounds: np.ndarray  # (n,) scorings so far
    kind: np.ndarray  # (n,) where each row's crop came from: NONE, FOLLOWED, DETECTED or NEARBY
    open: set = field(default_factory=set)  # rows waiting for scores


NONE, FOLLOWED, DETECTED, NEARBY = 0, 1, 2, 3  # no crop; from the face's track; from a detection on the frame; from one on a frame beside it


def square_of(affine: np.ndarray, size: int) -> np.ndarray:
    """(…, 3) cx, cy, side in frame pixels of the squares (…, 2, 3) frame → crop affines cut."""
    scale = affine[..., 0, 0]
    return np.stack([(size / 2 - affine[..., 0, 2]) / scale, (size / 2 - affine[..., 1, 2]) / scale, size / scale], -1)


def to_frame(points: np.ndarray, affines: np.ndarray) -> np.ndarray:
    """(k, 68, 2) crop points → frame points through each (k, 2, 3) frame → crop affine (scale + shift)."""
    scale = affines[:, 0, 0][:, None, None]
    return (points - affines[:, None, :, 2]) / scale


def drifted(crop_points: np.ndarray, frame_points: np.ndarray, affines: np.ndarray, crop: CropConfig, drift: float) -> np.ndarray:
    """(k,) True where the crop the landmarks give differs from the one they came from by more than
    ``drift`` of its side, or where the face touches the crop's edge (it then looks smaller than it is)."""
    used = square_of(affines, crop.size)
    now = crop_square(frame_points, crop)
    edge = 0.03 * crop.size
    at_edge = (crop_points.min(axis=(1, 2)) < edge) | (crop_points.max(axis=(1, 2)) > crop.size - 1 - edge)
    return at_edge | (np.abs(now - used).max(-1) > drift * used[:, 2])


def box_points(box: np.ndarray) -> np.ndarray:
    """A detector box as the two corners the crop convention squares (as it squares landmarks)."""
    return np.asarray(box, np.float64).reshape(2, 2)


class SelfTracker:
    """One worker's self-tracking of its videos: cut ahead, judge the model's landmarks, re-cut.

    ``put`` sends items to the model's thread; ``fallback()`` makes the detector's own
    tracker (or None when there is none) for a video whose landmarks cannot be trusted.
    """

    def __init__(self, detect: Callable, crop: CropConfig, threshold: float, put: Callable, drift: float = 0.10,
                 wait: int = 10, every: int = 1, fallback: Callable | None = None):
        self.detect = detect
        self.crop = crop
        self.threshold = threshold
        self.put = put
        self.drift = drift
        self.every = every
        self.wait = max(1, wait) * every
        self.fallback_backend = fallback
        self._backend = None
        self.videos: dict[int, str] = {}
        self.faces: dict[int, FaceState] = {}
        self.trackers: dict[int, object] = {}  # videos that fell back: their detector's tracker
        self.held: dict[tuple[int, int], _Held] = {}
        self.detections = 0  # full-frame searches run, for reports and tests

    @property
    def open_chunks(self) -> int:
        return len(self.held)

    def start(self, job: int, video: str) -> None:
        self.faces[job] = FaceState()
        self.videos[job] = video

    def notes(self, job: int) -> dict:
        """What the video's notes say of its faces (the most the detector saw in one frame)."""
        face, tracker = self.faces[job], self.trackers.get(job)
        seen = max(face.faces_seen, tracker.faces_seen if tracker is not None else 0)
        return {"faces_seen": seen} if face.searched or tracker is not None else {}

    def abandon(self, job: int) -> None:
        """The video failed: settle its open chunks as they are (its rows will not be kept)."""
        for key in sorted(k for k in self.held if k[0] == job):
            self._settle(*key, self.held[key])

    def _search(self, frame: np.ndarray, index: int, face: FaceState) -> np.ndarray | None:
        """A full-frame search, when the schedule allows: after 1, 2, 3 … searches in a row that
        found nothing the next waits 1, 2, 4 … frames, at most ``wait``."""
        if index < face.next_search:
            return None
        self.detections += 1
        found = self.detect(frame)
        face.searched = True
        face.faces_seen = max(face.faces_seen, len(found))
        chosen = choose_detection(found)
        if chosen is None:
            face.misses += 1
            face.next_search = index + min(2 ** (face.misses - 1) * self.every, self.wait)
            return None
        face.misses = 0
        return box_points(chosen[0])

    def cut(self, job: int, seq: int, batch: FrameBatch) -> Chunk:
        """The chunk of ``batch``'s frames, cut ahead from what is known of the face."""
        tracker = self.trackers.get(job)
        if tracker is not None:
            chunk = track_and_crop(batch, tracker, self.crop, job)
            chunk.seq, chunk.settled = seq, True
            return chunk
        face = self.faces[job]
        n = len(batch)
        held = _Held(batch, np.zeros(n, bool), np.zeros(n, np.float32), np.full((n, 4), np.nan, np.float32),
                     np.zeros((n, 2, 3)), np.zeros(n, np.int64), np.zeros(n, np.int8))
        crops = np.empty((n, self.crop.size, self.crop.size, 3), np.uint8)
        for r in range(n):
            index = int(batch.indices[r])
            points = face.predict(index)
            held.kind[r] = FOLLOWED
            if points is None:
                points = self._search(batch.frames[r], index, face)
                if points is None:
                    held.kind[r] = NONE
                    continue
                face.seen(index, points)  # the rest of the batch is cut from it too
                held.kind[r] = DETECTED
                for q in np.flatnonzero(held.kind[:r] == NONE):  # and the frames before it that had no face: the model judges
                    crops[q], held.affines[q] = crop_face(batch.frames[q], points, self.crop)
                    held.kind[q] = NEARBY
            crops[r], held.affines[r] = crop_face(batch.frames[r], points, self.crop)
        rows = np.flatnonzero(held.kind != NONE)
        held.open = set(rows.tolist())
        crops = crops[rows]
        chunk = Chunk(job, batch.indices, batch.timestamps, held.success, held.confidence, held.boxes, rows, crops,
                      held.affines[rows], seq=seq, settled=not held.open)
        if held.open:
            self.held[(job, seq)] = held
        return chunk

    def scored(self, msg: Scored) -> None:
        """Judge the model's landmarks for some rows of a chunk; re-cut, search, or settle them."""
        held = self.held.get((msg.job, msg.seq))
        if held is None:  # the video fell back meanwhile: those rows were tracked again
            return
        face = self.faces[msg.job]
        rows = np.asarray(msg.rows, np.int64)
        affines = held.affines[rows]
        points = to_frame(msg.landmarks.astype(np.float64), affines)
        ok = (msg.confidence >= self.threshold) & np.isfinite(points).all(axis=(1, 2))
        moved = drifted(msg.landmarks, points, affines, self.crop, self.drift)
        redo: list[tuple[int, np.ndarray]] = []
        for q in np.argsort(held.batch.indices[rows], kind="stable"):  # in frame order: the face's state moves forward
            r, index = int(rows[q]), int(held.batch.indices[rows[q]])
            held.rounds[r] += 1
            if held.kind[r] == DETECTED and held.rounds[r] == 1:
                face.found += 1
                face.doubted += int(not ok[q])
            if ok[q]:
                held.success[r], held.confidence[r] = True, msg.confidence[q]
                held.boxes[r] = landmark_boxes(points[q])
                face.seen(index, points[q])
                if moved[q] and held.rounds[r] <= REFINE_ROUNDS:
                    redo.append((r, points[q]))
                continue
            held.success[r], held.confidence[r], held.boxes[r] = False, 0.0, np.nan
            face.lost(index)
            if held.kind[r] == FOLLOWED:  # the crop followed a face that is not there: search this frame
                found = self._search(held.batch.frames[r], index, face)
                if found is not None:
                    held.kind[r] = DETECTED
                    held.rounds[r] = 0
                    redo.append((r, found))
        if face.found >= DOUBTS_BEFORE_FALLBACK and face.doubted * 2 > face.found and msg.job not in self.trackers:
            if self._fall_back(msg.job):
                return
        held.open -= set(rows.tolist())
        if redo:
            self._recut(msg.job, msg.seq, held, redo)
        elif not held.open:
            self._settle(msg.job, msg.seq, held)

    def _recut(self, job: int, seq: int, held: _Held, redo: list) -> None:
        rows = np.array([r for r, _ in redo], np.int64)
        crops = np.empty((len(rows), self.crop.size, self.crop.size, 3), np.uint8)
        for k, (r, points) in enumerate(redo):
            crops[k], held.affines[r] = crop_face(held.batch.frames[r], points, self.crop)
        held.open |= set(rows.tolist())
        self.put(Recut(job, seq, rows, crops))

    def _settle(self, job: int, seq: int, held: _Held) -> None:
        del self.held[(job, seq)]
        self.put(Settled(job, seq, held.success, held.confidence, held.boxes))

    def _fall_back(self, job: int) -> bool:
        """Track this video with the detector's own tracker from here on, its open chunks again too."""
        if self._backend is None and self.fallback_backend is not None:
            self._backend = self.fallback_backend()
        face = self.faces[job]
        what = f"the model's landmarks rejected {face.doubted} of {face.found} faces the detector found"
        if self._backend is None:
            self.trackers[job] = None
            self.put(Note(job, f"{what}; no landmark tracker to fall back on (install dlib's predictor, or give --landmark-model): "
                               "frames where they are weak have no face"))
            return False
        self.trackers[job] = tracker = Tracker(self._backend)
        self.put(Note(job, f"{what}; tracking this video with {self._backend.name} instead"))
        tracker.start(self.videos[job])
        for key in sorted(k for k in self.held if k[0] == job):  # again from the start of each open chunk
            held = self.held.pop(key)
            chunk = self.cut(job, key[1], held.batch)
            self.put(Recut(job, key[1], chunk.rows, chunk.crops))
            self.put(Settled(job, key[1], chunk.success, chunk.confidence, chunk.boxes))
        return True
