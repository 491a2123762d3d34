"""OpenFace-style face tracking: detect once, then follow the face from landmarks to landmarks.

Detection runs on the first frame and whenever the track is lost (fit confidence below a
threshold, or landmarks that are degenerate: not finite, tiny, off the frame, or a face that
jumped in size). Otherwise the region for frame t is the previous frame's landmarks. A frame
where no face is found is reported as such (success false, NaN) and the track is dropped, so
the next frame detects afresh; values are never carried over from an earlier frame.
Tracking is sequential by nature (frame t needs frame t−1). Backends whose fit re-crops around
its own first estimate (``batched_fit``: the network backend) may instead fit a whole batch from
the last known landmarks in one call; the frames up to the first one that fails the checks are
kept, and from there the batch goes on one frame at a time as above.

Backends whose presence check costs more than the fit itself (dlib: a HOG scan per frame) set
``verify_every`` = k: the tracker then fits k − 1 frames without the check and confirms the face
on the k-th and on the last frame of each batch. When a check fails, the frames since the last
confirmed one are fitted again one by one, each checked, so a face that leaves is reported
from the frame it left, as with a check on every frame.
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
    verify_every: int | None = None  # confirm the face on every k-th fit at least (None: the backend's own)
    batched: bool | None = None  # fit a batch at once from the last landmarks (None: the backend's choice)
    crop: CropConfig = field(default_factory=CropConfig)  # the square used to judge size and position


FACE_FOLLOWED = "the largest face found (box area × detector score), followed from frame to frame"


def choose_detection(detections: list) -> tuple[np.ndarray, float] | None:
    """The face to follow (:data:`FACE_FOLLOWED`): the largest box, weighted by detector score."""
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
        self.faces_seen = 0  # most faces the detector found in one frame of this video (one is followed)
        self._previous: np.ndarray | None = None
        self._confidence = 0.0  # of the last confirmed fit
        self._since_detect = 0
        self.rejected = 0  # faces the detector found whose fit was not a face (this video)
        self.accepted = 0  # … and whose fit was

    def start(self, video: str, frames: int | None = None, fps: float | None = None) -> None:
        """A new video: forget the track (``frames``, ``fps``: what is known of it; unused here)."""
        self._previous = None
        self._since_detect = 0
        self.faces_seen = 0
        self.rejected = self.accepted = 0
        self.backend.start(video)

    def update(self, batch: FrameBatch) -> FaceTrack:
        known = self.backend.read(batch.indices, batch.timestamps)
        if known is not None:
            return known
        track = FaceTrack.empty(batch.indices, batch.timestamps)
        every = self.config.verify_every or self.backend.verify_every
        n = len(batch)
        unchecked: list[int] = []  # frames fitted without the presence check since the last confirmed one
        rewind_to = None  # (previous, confidence, since_detect) before the first of them
        checked_until = -1  # frames up to here are checked one by one (after a failed check)
        i = 0
        while i < n:
            i += self._follow_batch(batch.frames, i, track)
            if i == n:
                break
            frame = batch.frames[i]
            if every > 1 and self._previous is not None and checked_until < i < n - 1 and len(unchecked) + 1 < every:
                state = (self._previous, self._confidence, self._since_detect)
                if self._follow_unchecked(frame, i, track):
                    rewind_to = rewind_to or state
                    unchecked.append(i)
                    i += 1
                    continue
            fitted = self._follow(frame)
            if fitted is None and unchecked:  # lost since the last check: check those frames one by one
                checked_until, i = i, unchecked[0]
                self._previous, self._confidence, self._since_detect = rewind_to
                self._clear(track, unchecked)
                unchecked, rewind_to = [], None
                continue
            unchecked, rewind_to = [], None
            if fitted is None:
                fitted = self._detect(frame)
            if fitted is None:
                self._previous = None
            else:
                self._record(track, i, *fitted)
            i += 1
        return track

    def _record(self, track: FaceTrack, i: int, landmarks: np.ndarray, confidence: float, scores: np.ndarray | None = None) -> None:
        _put_scores(track, i, scores)
        track.success[i] = True
        track.confidence[i] = confidence
        track.landmarks[i] = landmarks
        track.boxes[i] = landmark_boxes(landmarks)
        self._previous = landmarks
        self._confidence = confidence

    @staticmethod
    def _clear(track: FaceTrack, rows: list[int]) -> None:
        track.success[rows] = False
        track.confidence[rows] = 0.0
        track.landmarks[rows] = np.nan
        track.boxes[rows] = np.nan

    def _follow_unchecked(self, frame: np.ndarray, i: int, track: FaceTrack) -> bool:
        """Fit frame i from the last landmarks without the presence check; False if implausible."""
        every = self.config.redetect_every
        if every and self._since_detect >= every:
            return False
        landmarks = self.backend.fit_unchecked(frame[None], self._previous[None])[0]
        if not self._plausible(landmarks, self._confidence, frame.shape, self._previous):
            return False
        self._record(track, i, landmarks, self._confidence)
        self._since_detect += 1
        return True

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
        scores = getattr(self.backend, "last_scores", None)
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
            _put_scores(track, kept, None if scores is None else scores[:accepted])
            self._previous = landmarks[accepted - 1]
            self._confidence = float(confidence[accepted - 1])
            self._since_detect += accepted
        return accepted

    def _follow(self, frame: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None] | None:
        if self._previous is None:
            return None
        every = self.config.redetect_every
        if every and self._since_detect >= every:
            return None
        landmarks, confidence = self.backend.fit(frame[None], self._previous[None])
        if not self._plausible(landmarks[0], float(confidence[0]), frame.shape, self._previous):
            return None
        self._since_detect += 1
        return landmarks[0], float(confidence[0]), _first(getattr(self.backend, "last_scores", None))

    def _detect(self, frame: np.ndarray) -> tuple[np.ndarray, float, np.ndarray | None] | None:
        self.detections += 1
        self._since_detect = 0
        found = self.backend.detect(frame[None])[0]
        self.faces_seen = max(self.faces_seen, len(found))
        chosen = choose_detection(found)
        if chosen is None:
            return None
        landmarks, confidence = self.backend.fit(frame[None], chosen[0][None])
        if not self._plausible(landmarks[0], float(confidence[0]), frame.shape, None):
            self.rejected += 1
            return None
        self.accepted += 1
        return landmarks[0], float(confidence[0]), _first(getattr(self.backend, "last_scores", None))

    def _plausible(self, landmarks: np.ndarray, confidence: float, shape: tuple, previous: np.ndarray | None) -> bool:
        return plausible(self.config, self.backend, landmarks, confidence, shape, previous)


def _first(scores: np.ndarray | None) -> np.ndarray | None:
    return None if scores is None else scores[0]


def _put_scores(track: FaceTrack, rows, scores: np.ndarray | None) -> None:
    """Keep the AU intensities a backend's fit gave with its landmarks (the AU model's backbone)."""
    if scores is None:
        return
    if track.scores is None:
        track.scores = np.full((len(track), scores.shape[-1]), np.nan, np.float32)
    track.scores[rows] = scores


def plausible(cfg: TrackerConfig, backend: LandmarkBackend, landmarks: np.ndarray, confidence: float, shape: tuple,
              previous: np.ndarray | None) -> bool:
    """A fit that is a face: finite, confident enough, not tiny, centred in the frame, and (after
    ``previous``) not grown or shrunk beyond ``max_scale_change`` in one step."""
    threshold = backend.min_confidence if cfg.min_confidence is None else cfg.min_confidence
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
