"""The last few frames of a video and the fits made on them, kept across batches, and what they
are kept for: handing a slid fit's rows to the face it slid onto.

A fit can slide from one person onto another (one walking out of view, the other coming out from
behind them) and pass a search or two before its colours give it away. When a search lets it go
and the face it held gets a track of its own, the frames since it slid are found here
(:func:`slid_frames`) and their rows handed to that track (:func:`hand_over`).
"""

from __future__ import annotations

import numpy as np

from auhm.face.base import landmark_boxes
from auhm.face.following import Track
from auhm.face.linking import Written
from auhm.face.looks import appearance, look_distance
from auhm.video import FrameBatch


class RecentFrames:
    """The last ``limit`` decoded frames, and each track's landmarks on them. Frames are kept as
    views of their batch (a reader makes a new array for each batch): no copy a frame, and at most
    one batch held beyond the current one."""

    def __init__(self, limit: int):
        self.limit = limit
        self._frames: dict[int, np.ndarray] = {}  # frame number → its pixels
        self._fits: dict[int, dict[int, np.ndarray]] = {}  # frame number → track key → landmarks

    def clear(self) -> None:
        self._frames, self._fits = {}, {}

    def add(self, batch: FrameBatch, entries: list) -> None:
        """A batch once tracked, with its entries (row, track key, landmarks, …); frames older than
        the last ``limit`` are forgotten."""
        first = max(0, len(batch) - self.limit)
        for row in range(first, len(batch)):
            self._frames[int(batch.indices[row])] = batch.frames[row]
        for row, key, landmarks, *_ in entries:
            if row >= first:
                self._fits.setdefault(int(batch.indices[row]), {})[key] = landmarks
        for index in sorted(self._frames)[: -self.limit or None]:
            del self._frames[index]
            self._fits.pop(index, None)

    def with_batch(self, batch: FrameBatch, upto: int, entries: list) -> tuple[dict[int, np.ndarray], dict[int, dict[int, np.ndarray]]]:
        """Frames and fits (frame number → …) kept here, and those of ``batch``'s rows before
        ``upto`` with their ``entries``: everything known before a search on row ``upto``."""
        frames = dict(self._frames)
        fits = {index: dict(keys) for index, keys in self._fits.items()}
        for row in range(upto):
            frames[int(batch.indices[row])] = batch.frames[row]
        for row, key, landmarks, *_ in entries:
            if row < upto:
                fits.setdefault(int(batch.indices[row]), {})[key] = landmarks
        return frames, fits


def slid_frames(frames: dict[int, np.ndarray], fits: dict[int, dict[int, np.ndarray]], search: int, last_search: int,
                track: Track, released: Track, apart: float, leap: float) -> dict[int, np.ndarray]:
    """The frames before ``search`` where the fit of ``released`` (let go there: it does not look
    like its track) was already on the face ``track`` was found on, when the two looks are more than
    ``apart``; frame number → the fit ``released`` had there. Those since its fit leapt (more than
    ``leap`` of its width, both from where it was and from where its motion took it: it slid from
    one face to the next), where it did within the frames kept; else those since ``last_search``
    (where it still looked like its track) on which the face it held looks more like ``track``."""
    if track.look is None or released.look is None or look_distance(track.look, released.look) <= apart:
        return {}
    run = []  # the decoded frames right before the search where released has a fit, newest first
    for f in sorted((f for f in frames if f < search), reverse=True):
        if released.key not in fits.get(f, {}):
            break
        run.append(f)
    theirs = {f: fits[f][released.key] for f in run}
    start = next((k for k in range(len(run) - 2) if leapt(theirs[run[k + 2]], theirs[run[k + 1]], theirs[run[k]], leap)), None)
    if start is not None:
        return {f: theirs[f] for f in run[: start + 1]}
    handed = {}
    for f in run:
        look = appearance(frames[f], theirs[f]) if f > last_search else None
        if look is None or look_distance(track.look, look) >= look_distance(released.look, look):
            break
        handed[f] = theirs[f]
    return handed


def hand_over(batch: FrameBatch, entries: list, fits: dict[int, dict[int, np.ndarray]], written: Written, released: Track,
              track: Track, handed: dict[int, np.ndarray]) -> None:
    """Give confirmed ``track`` the rows of ``released`` on the ``handed`` frames (:func:`slid_frames`,
    from these ``fits``): those among the batch's ``entries`` at once, those already written at the
    video's end (``written``); ``released`` goes back to where it last was before them."""
    for k, e in enumerate(entries):
        if e[1] == released.key and int(batch.indices[e[0]]) in handed:
            entries[k] = (e[0], track.key, *e[2:])
    earlier = [f for f in fits if f < min(handed) and released.key in fits[f]]
    if earlier:
        released.frame = max(earlier)
        released.landmarks = fits[released.frame][released.key]
    done = sorted(f for f in handed if f < int(batch.indices[0]))
    if done and released.id is not None:
        kept = (released.frame, landmark_boxes(released.landmarks)) if earlier else None
        written.hand_over(released.id, track.id, done, np.array([landmark_boxes(handed[f]) for f in done]), kept)


def leapt(a: np.ndarray, b: np.ndarray, c: np.ndarray, limit: float) -> bool:
    """Whether a fit moved from ``b`` to ``c`` by more than ``limit`` of its width, both from where
    it was and from where its motion (from ``a`` to ``b``) carried it on."""
    boxes = landmark_boxes(np.stack([a, b, c])).astype(np.float64)
    centres = (boxes[:, :2] + boxes[:, 2:]) / 2
    far = limit * max(boxes[1, 2] - boxes[1, 0], 1.0)
    return bool(np.hypot(*(centres[2] - centres[1])) > far and np.hypot(*(centres[2] - 2 * centres[1] + centres[0])) > far)
