"""The last few frames of a video and the fits made on them, kept across batches.

A fit can slide from one person onto another (one walking out of view, the other coming out from
behind them) and pass a search or two before its colours give it away. When a search lets it
go, the frames since it slid are found here, those where its fit looks more like the face found
than like its own track, and their rows are handed to that face.
"""

from __future__ import annotations

import numpy as np

from auhm.video import FrameBatch


class RecentFrames:
    """Copies of the last ``limit`` decoded frames, and each track's landmarks on them."""

    def __init__(self, limit: int):
        self.limit = limit
        self._frames: dict[int, np.ndarray] = {}  # frame number → its pixels
        self._fits: dict[int, dict[int, np.ndarray]] = {}  # frame number → track key → landmarks

    def clear(self) -> None:
        self._frames, self._fits = {}, {}

    def add(self, batch: FrameBatch, entries: list) -> None:
        """A batch once tracked, with its entries (row, track key, landmarks, …); only its last
        ``limit`` frames are copied, and frames older than the last ``limit`` are forgotten."""
        first = max(0, len(batch) - self.limit)
        for row in range(first, len(batch)):
            self._frames[int(batch.indices[row])] = batch.frames[row].copy()
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
