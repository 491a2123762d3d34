"""Following one face between detections, from its own landmarks, as far as the fits stay a face.

A :class:`Track` is what the multi-face tracker knows of one face: its last fit, its motion, its
id and its colours. A backend whose fit re-crops around its own first estimate (``batched_fit``)
fits the frames at once from where the face's motion puts it; any other goes frame by frame from
the previous fit.
A backend whose presence check is costly (``verify_every`` = k: dlib's HOG window) is checked on
every k-th frame and the last; when a check fails, the frames since the last one are fitted again,
each checked, so a face is lost where it left. Several faces on the same frames are fitted in one
call (:func:`follow_faces`, :func:`fit_on_frame`), and a :class:`Follower` does it for every face
a tracker follows, keeping what a batched fit made ahead; what makes a fit no longer the face's
own is judged here too: a size far off the face found there (:func:`size_off`), two fits on one
face (:func:`one_track_a_face`, :func:`first_conflict`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auhm.face.base import LandmarkBackend, landmark_boxes
from auhm.face.boxes import box_iou
from auhm.face.crop import crop_square
from auhm.face.looks import appearance, look_distance
from auhm.face.tracking import TrackerConfig, plausible
from auhm.video import FrameBatch

Fits = tuple[np.ndarray, np.ndarray, "np.ndarray | None"]  # landmarks (n, 68, 2), confidence (n,), scores (n, …) or None

STEP_WEIGHT = 0.25  # a new step's share of a face's velocity: one step is mostly its fit's jitter of a pixel or two
CUT_AHEAD = 8  # frames at most a face's velocity is carried when cutting its crops (bench/RESULTS.md)
GAP_AHEAD = 30  # … and when looking for it after a gap


@dataclass
class Track:
    """One face followed: where it was last seen, how its box moves (carried forward to predict
    where it is next), its id once confirmed, and what it looks like. Its velocity is smoothed over
    several steps (``STEP_WEIGHT``) and carried at most ``CUT_AHEAD`` frames where its crops are cut:
    a still face's jitter, carried a batch ahead, moved its crops off it, and each was cut again."""

    key: int  # internal, in order of birth
    landmarks: np.ndarray
    confidence: float
    frame: int  # last frame index with this face
    hits: int = 1
    id: int | None = None  # given at confirmation
    live: bool = True  # seen on the last frame processed: followed, not searched for
    velocity: np.ndarray = field(default_factory=lambda: np.zeros(2))  # box centre, px per frame
    look: np.ndarray | None = None  # appearance: the mean colour histogram of its face at detections
    looks: int = 0

    def box(self) -> np.ndarray:
        return landmark_boxes(self.landmarks).astype(np.float64)

    def predicted_box(self, frame: int) -> np.ndarray:
        """Where its box is on ``frame``, by its motion: to match what a search finds (after a gap too)."""
        shift = self.velocity * min(max(frame - self.frame, 0), GAP_AHEAD)
        return self.box() + np.concatenate([shift, shift])

    def predicted_points(self, frames) -> np.ndarray:
        """Where its landmarks are on ``frames`` (a frame index: (68, 2); several: (n, 68, 2)), by its
        motion: where its crops are cut."""
        ahead = np.minimum(np.maximum(np.asarray(frames) - self.frame, 0), CUT_AHEAD)
        return self.landmarks + self.velocity * ahead[..., None, None]

    def seen(self, frame: int, landmarks: np.ndarray, confidence: float) -> None:
        if frame > self.frame:
            step = (landmark_boxes(landmarks)[:2] + landmark_boxes(landmarks)[2:] - self.box()[:2] - self.box()[2:]) / 2 / (frame - self.frame)
            self.velocity = (1 - STEP_WEIGHT) * self.velocity + STEP_WEIGHT * step if self.live else step
        self.landmarks, self.confidence, self.frame = landmarks, confidence, frame
        self.hits += 1
        self.live = True


def follow_face(backend: LandmarkBackend, cfg: TrackerConfig, frames: np.ndarray, regions: np.ndarray,
                previous: np.ndarray, confidence: float, run_scale: float | None = None) -> Fits:
    """Fits on ``frames`` up to the first implausible one (excluded); ``regions`` (n, 68, 2): where
    the face is expected on each (used by a batched fit), ``previous``/``confidence``: its last fit;
    ``run_scale``: how far a batched fit's size may drift from ``previous``'s over the frames."""
    if backend.batched_fit and len(frames) > 1:
        landmarks, conf = backend.fit(frames, regions)
        return _plausible_run(backend, cfg, frames.shape[1:], landmarks, conf, getattr(backend, "last_scores", None), previous, run_scale)
    return _frame_by_frame(backend, cfg, frames, previous, confidence)


def follow_faces(backend: LandmarkBackend, cfg: TrackerConfig, frames: np.ndarray, regions: list[np.ndarray],
                 previous: list[np.ndarray], run_scale: float | None = None) -> list[Fits]:
    """Several faces followed on the same ``frames`` by a batched backend in one call (one forward
    for all their crops); each face's fits end at its first implausible one, as in :func:`follow_face`."""
    m = len(frames)
    landmarks, conf = backend.fit_rows(frames, np.tile(np.arange(m), len(regions)), np.concatenate(regions))
    scores = getattr(backend, "last_scores", None)
    out = []
    for k, last in enumerate(previous):
        part = slice(k * m, (k + 1) * m)
        out.append(_plausible_run(backend, cfg, frames.shape[1:], landmarks[part], conf[part], None if scores is None else scores[part], last, run_scale))
    return out


def _plausible_run(backend: LandmarkBackend, cfg: TrackerConfig, shape: tuple, landmarks: np.ndarray, conf: np.ndarray,
                   scores: np.ndarray | None, previous: np.ndarray, run_scale: float | None = None) -> Fits:
    """The fits up to the first implausible one (excluded), each judged against the one before, and
    (``run_scale``) its size against the first ``previous``'s: a fit spreading onto a face beside it
    grows by small steps."""
    first = crop_square(previous, cfg.crop)[2] if run_scale else None
    k = 0
    for k in range(len(landmarks)):
        if not plausible(cfg, backend, landmarks[k], float(conf[k]), shape, previous):
            break
        if first and not 1 / run_scale <= crop_square(landmarks[k], cfg.crop)[2] / first <= run_scale:
            break
        previous = landmarks[k]
    else:
        k = len(landmarks)
    return landmarks[:k], conf[:k], None if scores is None else scores[:k]


def fit_on_frame(backend: LandmarkBackend, cfg: TrackerConfig, frame: np.ndarray, regions: list[np.ndarray],
                 previous: list[np.ndarray] | None = None) -> list:
    """Several faces of one frame fitted in one call (a network scores several crops for little more
    than one), each from its region (a found box's corners, or landmarks carried forward):
    (landmarks, confidence, scores) for each, None where it is no face (or, after its ``previous``
    fit, an implausible one)."""
    if not regions:
        return []
    landmarks, confidence = backend.fit_rows(frame[None], np.zeros(len(regions), np.intp), np.stack(regions))
    scores = getattr(backend, "last_scores", None)
    out = []
    for k in range(len(regions)):
        face = plausible(cfg, backend, landmarks[k], float(confidence[k]), frame.shape, None if previous is None else previous[k])
        out.append((landmarks[k], float(confidence[k]), None if scores is None else scores[k]) if face else None)
    return out


def size_off(landmarks: np.ndarray, box: np.ndarray, bounds: tuple[float, float]) -> bool:
    """Whether a fit's width over that of the face found where it is (``box``) lies outside
    ``bounds``: a fit spreading over a face behind or beside it grows by steps too small to jump."""
    x0, _, x1, _ = landmark_boxes(landmarks)
    ratio = (x1 - x0) / max(float(box[2] - box[0]), 1.0)
    return not bounds[0] <= ratio <= bounds[1]


def one_track_a_face(frame: np.ndarray, fitted: list, duplicate_iou: float, unknown: float) -> list:
    """Of ``fitted`` (track, landmarks, …) whose fits hold one face (overlap past ``duplicate_iou``),
    keep the track that face looks like (two people crossing stand, for a moment, where each
    other's motion predicts them); a track without colours counts at distance ``unknown``; then the
    oldest."""
    if len(fitted) < 2:
        return fitted

    def claim(f) -> tuple:
        t, landmarks = f[0], f[1]
        look = appearance(frame, landmarks) if t.look is not None else None
        distance = look_distance(t.look, look) if look is not None else unknown
        return (round(distance, 6), t.id is None, t.id if t.id is not None else 0, t.key)

    kept: list = []
    for f in sorted(fitted, key=claim):
        box = landmark_boxes(f[1])
        if all(box_iou(box, landmark_boxes(g[1]))[0, 0] <= duplicate_iou for g in kept):
            kept.append(f)
    return kept


@dataclass
class FitsAhead:
    """A face's fits on batch rows [``start``, ``end``), made ahead (a network fits many frames at
    once): shorter than that, the face was lost where they end."""

    start: int
    end: int
    fits: tuple  # landmarks (n, 68, 2), confidence (n,), scores (n, …) or None

    @property
    def lost(self) -> bool:
        """Whether the face was lost before ``end``."""
        return len(self.fits[0]) < self.end - self.start

    def covers(self, start: int, end: int) -> bool:
        """Whether these fits say where the face is on rows [start, end) (or that it is lost before)."""
        return self.start == start and (self.end >= end or self.lost)

    def row(self, k: int):
        """(landmarks, confidence, scores) of row start + k, or None where the face was lost."""
        landmarks, confidence, scores = self.fits
        if k >= len(landmarks):
            return None
        return landmarks[k], float(confidence[k]), None if scores is None else scores[k]

    def after(self, row: int) -> "FitsAhead":
        """The fits from ``row`` on."""
        k = row - self.start
        landmarks, confidence, scores = self.fits
        return FitsAhead(row, max(row, self.end), (landmarks[k:], confidence[k:], None if scores is None else scores[k:]))


class Follower:
    """Fits the followed faces forward from their own landmarks, and keeps what a backend that fits
    many frames at once (``batched_fit``: a network) fitted ahead of the frame asked for: a lone
    face to the batch's end (one call a batch, as with one face), several only to the next search
    (among several faces a fit is lost sooner, and what was fitted past the loss is thrown away).
    ``run_scale``: how far, among several faces, a batched run's size may drift (:func:`follow_face`)."""

    def __init__(self, backend: LandmarkBackend, rules: TrackerConfig, run_scale: float):
        self.backend, self.rules, self.run_scale = backend, rules, run_scale
        self.ahead: dict[int, FitsAhead] = {}  # track key → its fits made ahead, to the batch's end (or its loss)

    def forget(self, key: int | None = None) -> None:
        """Drop what was fitted ahead: for track ``key`` (its face found again elsewhere, or gone), or for all (a new batch)."""
        if key is None:
            self.ahead = {}
        else:
            self.ahead.pop(key, None)

    def fits(self, batch: FrameBatch, i: int, upto: int, live: list[Track]) -> dict[int, FitsAhead]:
        """Each live track's fits from row ``i``, at least to row ``upto`` (or to where it is lost):
        with a batched backend in one call for every track lacking them, else frame by frame."""
        if not self.backend.batched_fit:
            return {t.key: FitsAhead(i, upto, self.fit_track(batch, i, upto, t)) for t in live}
        need = [t for t in live if not (t.key in self.ahead and self.ahead[t.key].covers(i, upto))]
        end = len(batch) if len(live) < 2 else upto
        run_scale = self.run_scale if len(live) > 1 else None
        if len(need) == 1:
            self.ahead[need[0].key] = FitsAhead(i, end, self.fit_track(batch, i, end, need[0], run_scale))
        elif need:
            regions = [t.predicted_points(batch.indices[i:end]) for t in need]
            fits = follow_faces(self.backend, self.rules, batch.frames[i:end], regions, [t.landmarks for t in need], run_scale)
            self.ahead.update({t.key: FitsAhead(i, end, f) for t, f in zip(need, fits)})
        return {t.key: self.ahead[t.key] for t in live}

    def keep_after(self, ahead: dict[int, FitsAhead], row: int) -> None:
        """Keep of ``ahead`` (from :meth:`fits`) what lies from ``row`` on, for the rows still to come."""
        if self.backend.batched_fit:
            self.ahead.update({key: a.after(row) for key, a in ahead.items()})

    def on_row(self, batch: FrameBatch, r: int, live: list[Track]) -> dict:
        """Track key → its fit (landmarks, confidence, scores) on row ``r`` from its own landmarks, for
        the live tracks whose face is there."""
        if not self.backend.batched_fit:
            regions = [t.predicted_points(int(batch.indices[r])) for t in live]
            fits = dict(zip([t.key for t in live], fit_on_frame(self.backend, self.rules, batch.frames[r], regions, [t.landmarks for t in live])))
        else:
            ahead = self.fits(batch, r, r + 1, live)
            fits = {t.key: ahead[t.key].row(0) for t in live}
            self.keep_after(ahead, r + 1)
        return {key: fit for key, fit in fits.items() if fit is not None}

    def fit_track(self, batch: FrameBatch, i: int, j: int, t: Track, run_scale: float | None = None) -> Fits:
        """Landmarks, confidence (and scores) of track ``t`` on rows i, i+1 … up to the first implausible one (excluded)."""
        regions = t.predicted_points(batch.indices[i:j])
        return follow_face(self.backend, self.rules, batch.frames[i:j], regions, t.landmarks, t.confidence, run_scale)


def first_conflict(i: int, end: int, live: list[Track], fits: dict[int, Fits], duplicate_iou: float) -> int:
    """The first row in [i, end) where two tracks' ``fits`` (from row ``i``) hold one face; ``end`` where none does."""
    if len(live) < 2:
        return end
    for r in range(i, end):
        boxes = np.array([landmark_boxes(fits[t.key][0][r - i]) for t in live], np.float64).reshape(-1, 4)
        if (np.triu(box_iou(boxes, boxes), 1) > duplicate_iou).any():
            return r
    return end


def _frame_by_frame(backend: LandmarkBackend, cfg: TrackerConfig, frames: np.ndarray, start: np.ndarray, confidence: float) -> Fits:
    shape = frames.shape[1:]
    every = max(1, int(cfg.verify_every or backend.verify_every))
    out: list = []  # (landmarks, confidence, scores)
    previous, unchecked, checking_from = start, 0, len(frames)
    k = 0
    while k < len(frames):
        if every > 1 and k < checking_from and unchecked + 1 < every and k < len(frames) - 1:
            landmarks = backend.fit_unchecked(frames[k : k + 1], previous[None])[0]
            if plausible(cfg, backend, landmarks, confidence, shape, previous):
                out.append((landmarks, confidence, None))
                previous, unchecked, k = landmarks, unchecked + 1, k + 1
                continue
        landmarks, conf = backend.fit(frames[k : k + 1], previous[None])
        scores = getattr(backend, "last_scores", None)
        if plausible(cfg, backend, landmarks[0], float(conf[0]), shape, previous):
            out.append((landmarks[0], float(conf[0]), None if scores is None else scores[0]))
            previous, confidence, unchecked, k = landmarks[0], float(conf[0]), 0, k + 1
            continue
        if unchecked:  # lost since the last check: check those frames one by one
            k -= unchecked
            del out[k:]
            previous = out[-1][0] if out else start
            checking_from, unchecked = -1, 0  # from here every frame is checked
            continue
        break
    if not out:
        return np.zeros((0, 68, 2), np.float32), np.zeros(0, np.float32), None
    scores = None if out[0][2] is None else np.stack([o[2] for o in out])
    return np.stack([o[0] for o in out]), np.asarray([o[1] for o in out], np.float32), scores
