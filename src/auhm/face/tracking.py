"""OpenFace-style face tracking: detect once, then follow the face from landmarks to landmarks.

Detection runs on the first frame and whenever the track is lost (fit confidence below a
threshold, or landmarks that are degenerate: not finite, tiny, off the frame, or a face that
jumped in size). Otherwise the region for frame t is the previous frame's landmarks. A frame
where no face is found is reported as such (success false, NaN) and the track is dropped, so
the next frame detects afresh; values are never carried over from an earlier frame.
Tracking is sequential by nature (frame t needs frame t−1). Backends whose fit re-crops around
its own first estimate (``batched_fit``: the auhm backend) may instead fit a whole batch from
the last known landmarks in one call; the frames up to the first one that fails the checks are
kept, and from there the batch goes on one frame at a time as above.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auhm.face.base import FaceTrack, LandmarkBackend, landmark_boxes
from auhm.face.crop import CropConfig, crop_square
from auhm.video import FrameBatch


@dataclass(frozen=True)
class TrackerConfig:
    min_confidence: float | None = None  # fit confidence below this: lost (None: the backend's own)
    max_scale_change: float = 1.5  # face size ratio between consecutive frames beyond this: lost
    min_face: float = 12.0  # landmark box side in pixels below this: degenerate
    redetect_every: int = 0  # also re-detect every k tracked frames (0: only when lost)
    batched: bool | None = None  # fit a batch at once from the last landmarks (None: the backend's choice)
    crop: CropConfig = field(default_factory=CropConfig)  # the square used to judge size and position


def choose_detection(detections: list) -> tuple[np.ndarray, float] | None:
    """The face to follow: the largest box, weighted by detector score."""
    if not detections:
        return None

    def weight(d) -> float:
        box, score = d
        return float((box[2] - box[0]) * (box[3] - box[1])) * float(score)

    box, score = max(detections, key=weight)
    return np.asarray(box, np.float64), float(score)


class Tracker:
    """Follows one face through a video, batch by batch."""

    def __init__(self, backend: LandmarkBackend, config: TrackerConfig = TrackerConfig()):
        self.backend = backend
        self.config = config
        self.detections = 0  # frames on which detect ran (all videos), for reports and tests
        self._previous: np.ndarray | None = None
        self._since_detect = 0

    def start(self, video: str) -> None:
        """A new video: forget the track."""
        self._previous = None
        self._since_detect = 0
        self.backend.start(video)

    def update(self, batch: FrameBatch) -> FaceTrack:
        known = self.backend.read(batch.indices, batch.timestamps)
        if known is not None:
            return known
        track = FaceTrack.empty(batch.indices, batch.timestamps)
        i = 0
        while i < len(batch):
            i += self._follow_batch(batch.frames, i, track)
            if i == len(batch):
                break
            frame = batch.frames[i]
            fitted = self._follow(frame)
            if fitted is None:
                fitted = self._detect(frame)
            if fitted is None:
                self._previous = None
            else:
                landmarks, confidence = fitted
                track.success[i] = True
                track.confidence[i] = confidence
                track.landmarks[i] = landmarks
                track.boxes[i] = landmark_boxes(landmarks)
                self._previous = landmarks
            i += 1
        return track

    # ------------------------------------------------------------------------------------------
    def _follow_batch(self, frames: np.ndarray, start: int, track: FaceTrack) -> int:
        """Fit frames[start:] from the last landmarks in one call; how many leading frames were accepted."""
        batched = self.backend.batched_fit if self.config.batched is None else self.config.batched
        if not batched or self._previous is None or len(frames) - start < 2:
            return 0
        frames = frames[start:]
        n = len(frames)
        if self.config.redetect_every:
            n = min(n, self.config.redetect_every - self._since_detect)
        if n < 1:
            return 0
        landmarks, confidence = self.backend.fit(frames[:n], np.repeat(self._previous[None], n, axis=0))
        accepted = 0
        for i in range(n):
            if not self._plausible(landmarks[i], float(confidence[i]), frames.shape[1:], self._previous if i == 0 else landmarks[i - 1]):
                break
            accepted += 1
        if accepted:
            kept = slice(start, start + accepted)
            track.success[kept] = True
            track.confidence[kept] = confidence[:accepted]
            track.landmarks[kept] = landmarks[:accepted]
            track.boxes[kept] = landmark_boxes(landmarks[:accepted])
            self._previous = landmarks[accepted - 1]
            self._since_detect += accepted
        return accepted

    def _follow(self, frame: np.ndarray) -> tuple[np.ndarray, float] | None:
        if self._previous is None:
            return None
        every = self.config.redetect_every
        if every and self._since_detect >= every:
            return None
        landmarks, confidence = self.backend.fit(frame[None], self._previous[None])
        if not self._plausible(landmarks[0], float(confidence[0]), frame.shape, self._previous):
            return None
        self._since_detect += 1
        return landmarks[0], float(confidence[0])

    def _detect(self, frame: np.ndarray) -> tuple[np.ndarray, float] | None:
        self.detections += 1
        self._since_detect = 0
        chosen = choose_detection(self.backend.detect(frame[None])[0])
        if chosen is None:
            return None
        landmarks, confidence = self.backend.fit(frame[None], chosen[0][None])
        if not self._plausible(landmarks[0], float(confidence[0]), frame.shape, None):
            return None
        return landmarks[0], float(confidence[0])

    def _plausible(self, landmarks: np.ndarray, confidence: float, shape: tuple, previous: np.ndarray | None) -> bool:
        cfg = self.config
        threshold = self.backend.min_confidence if cfg.min_confidence is None else cfg.min_confidence
        if not np.isfinite(landmarks).all() or not np.isfinite(confidence) or confidence < threshold:
            return False
        cx, cy, side = crop_square(landmarks, cfg.crop)
        if side / cfg.crop.scale < cfg.min_face:
            return False
        h, w = shape[:2]
        if not (0 <= cx < w and 0 <= cy < h):
            return False
        if previous is not None:
            ratio = side / crop_square(previous, cfg.crop)[2]
            if not (1 / cfg.max_scale_change <= ratio <= cfg.max_scale_change):
                return False
        return True
