"""Tracking with the AU model's own backbone landmarks (``--landmarks auto`` on a transfer checkpoint).

The crop of a frame is cut from the landmarks the model predicted for the latest frame already
scored of that video, so with batching it lags by up to ``queue depth × batch`` frames. A frame
whose own predicted landmarks put the face more than ``refine_drift`` of the crop side away from
the crop it was cut with is re-cut from them and re-scored (one extra forward for those frames
only); a frame whose landmarks are not confident is re-detected. The lag therefore costs
forwards, never accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from auhm.face.base import landmark_boxes
from auhm.face.crop import CropConfig, crop_face, crop_square, invert_affine, warp_points
from auhm.infer.chunks import Chunk
from auhm.infer.predictor import Prediction, Predictor
from auhm.video import FrameBatch

REFINE_ROUNDS = 3


@dataclass
class TrackState:
    """Self-tracking: the latest landmarks the model predicted for a video (frame px)."""

    frame: int = -1
    landmarks: np.ndarray | None = None
    velocity: np.ndarray | None = None  # px per frame, from the last two scored frames
    next_search: int = 0  # after a failed search, the frame from which to search again
    last_seen: np.ndarray | None = None  # landmarks of the last frame with a face

    def may_search(self, frame: int) -> bool:
        return frame >= self.next_search

    def search_failed(self, frame: int, wait: int) -> None:
        """A full-frame search is costly: after one finds nothing, wait ``wait`` frames (as OpenFace does)."""
        self.next_search = frame + max(1, wait)

    def update(self, frame: int, landmarks: np.ndarray | None) -> None:
        if frame < self.frame:
            return
        if landmarks is not None and self.landmarks is not None and 0 < frame - self.frame <= 4:
            self.velocity = (landmarks - self.landmarks) / (frame - self.frame)
        elif landmarks is None or self.landmarks is None:
            self.velocity = None
        self.frame, self.landmarks = frame, landmarks
        if landmarks is not None:
            self.last_seen = landmarks

    def predict(self, frame: int) -> np.ndarray | None:
        """Landmarks expected at ``frame``: constant velocity from the latest, over the lag."""
        lms, v = self.landmarks, self.velocity
        if lms is None or v is None:
            return lms
        return lms + v.mean(0) * min(max(frame - self.frame, 0), 32)


def self_track_and_crop(batch: FrameBatch, state: TrackState, detect, crop: CropConfig, job: int, wait: int = 10) -> Chunk:
    """Crops from the model's latest landmarks for the video; detection where there are none."""
    n = len(batch)
    success = np.zeros(n, bool)
    confidence = np.zeros(n, np.float32)
    boxes = np.full((n, 4), np.nan, np.float32)
    rows, crops, affines = [], [], []
    for r in range(n):
        lms = state.predict(int(batch.indices[r]))
        if lms is None:
            frame = int(batch.indices[r])
            lms, conf = detect(batch, r, near=state.last_seen, search=state.may_search(frame))
            if lms is None:
                state.search_failed(frame, wait)
                continue
            state.update(int(batch.indices[r]), lms)
            confidence[r] = conf
        c, m = crop_face(batch.frames[r], lms, crop)
        success[r] = True
        boxes[r] = landmark_boxes(lms)
        rows.append(r)
        crops.append(c)
        affines.append(m)
    rows = np.asarray(rows, np.int64)
    chunk = Chunk(
        job, batch.indices, batch.timestamps, success, confidence, boxes, rows,
        np.stack(crops) if crops else np.empty((0, crop.size, crop.size, 3), np.uint8),
        np.stack(affines) if affines else np.empty((0, 2, 3)),
    )
    chunk.frames = batch.frames[rows] if len(rows) else None
    return chunk


def detector(backend):
    """detect(batch, r) -> (landmarks | None, confidence): a fresh search on one frame."""
    from auhm.face.tracking import choose_detection

    def detect(batch: FrameBatch, r: int, near: np.ndarray | None = None, search: bool = True):
        frame = batch.frames[r : r + 1]
        if near is not None:  # cheap first: fit where the face was last seen
            lms, conf = backend.fit(frame, np.asarray(near, np.float64)[None])
            if np.isfinite(lms[0]).all() and conf[0] >= getattr(backend, "min_confidence", 0.0):
                return np.asarray(lms[0], np.float64), float(conf[0])
        if not search:
            return None, 0.0
        chosen = choose_detection(backend.detect(frame)[0])
        if chosen is None:
            return None, 0.0
        lms, conf = backend.fit(frame, chosen[0][None])
        lms = np.asarray(lms[0], np.float64)
        if not np.isfinite(lms).all():
            return None, 0.0
        return lms, float(conf[0])

    return detect


def square_of(affine: np.ndarray, size: int) -> np.ndarray:
    """(cx, cy, side) in frame pixels of the square a frame → crop affine cuts."""
    scale = affine[0, 0]
    return np.array([(size / 2 - affine[0, 2]) / scale, (size / 2 - affine[1, 2]) / scale, size / scale])


def drifted(crop_landmarks: np.ndarray, frame_landmarks: np.ndarray, affine: np.ndarray, crop: CropConfig, drift: float) -> bool:
    """True when the face's own crop differs from the one it was cut with by more than ``drift``."""
    used = square_of(affine, crop.size)
    now = crop_square(frame_landmarks, crop)
    edge = 0.03 * crop.size  # a face cut by the crop's edge looks smaller than it is
    at_edge = crop_landmarks.min() < edge or crop_landmarks.max() > crop.size - 1 - edge
    return bool(at_edge or np.abs(now - used).max() > drift * used[2])


def follow(c: Chunk, s: int, k: int, pred: Prediction, sl: slice, state: TrackState, predictor: Predictor,
           config, detect) -> None:
    """Self-tracking: update the video's landmarks from the model, re-cut frames that drifted."""
    conf = pred.landmark_confidence[sl] if pred.landmark_confidence is not None else np.ones(k, np.float32)
    lost_below = config.min_landmark_confidence
    if lost_below is None:
        lost_below = float(predictor.info.get("backbone_presence_threshold", 0.25))
    redo: list[tuple[int, int, np.ndarray]] = []  # (row, slot, landmarks in frame px to re-cut from)
    for q in range(k):
        slot = s + q
        r = int(c.rows[slot])
        crop_lms = pred.landmarks[sl][q].astype(np.float64)
        frame_lms = warp_points(crop_lms, invert_affine(c.affines[slot]))
        if conf[q] < lost_below:  # lost: search this frame afresh
            batch = FrameBatch(c.indices[r : r + 1], c.timestamps[r : r + 1], c.frames[slot : slot + 1])
            near = state.last_seen if state.last_seen is not None else frame_lms  # the last good face, not this miss
            frame_lms, _ = detect(batch, 0, near=near, search=state.may_search(int(c.indices[r])))
            if frame_lms is None:
                c.success[r] = False
                c.confidence[r] = 0.0
                state.update(int(c.indices[r]), None)
                state.search_failed(int(c.indices[r]), config.redetect_every)
                continue
            moved = True
        else:
            c.confidence[r] = float(conf[q])
            moved = drifted(crop_lms, frame_lms, c.affines[slot], predictor.crop, config.refine_drift)
        state.update(int(c.indices[r]), frame_lms)
        c.boxes[r] = landmark_boxes(frame_lms)
        if moved:
            redo.append((r, slot, frame_lms))
    for _ in range(REFINE_ROUNDS):  # re-cut from the frame's own landmarks until the crop holds still
        if not redo:
            break
        cuts = [crop_face(c.frames[slot], lms, predictor.crop) for _, slot, lms in redo]
        again = predictor(np.stack([img for img, _ in cuts]))
        still = []
        for q, ((r, slot, _), (_, m)) in enumerate(zip(redo, cuts)):
            c.intensities[r] = again.intensities[q]
            if again.landmarks is None:
                continue
            lms = warp_points(again.landmarks[q].astype(np.float64), invert_affine(m))
            c.boxes[r] = landmark_boxes(lms)
            c.confidence[r] = float(again.landmark_confidence[q])
            state.update(int(c.indices[r]), lms)
            if drifted(again.landmarks[q], lms, m, predictor.crop, config.refine_drift):
                still.append((r, slot, lms))
        redo = still
