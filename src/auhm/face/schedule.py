"""When the multi-face tracker searches the whole frame for faces.

Searches fall on a grid of the video's decoded frames, the last of every ``every`` (frames
``every`` − 1, 2·``every`` − 1 …, and the first frame): a batch whose length is a multiple of
``every`` then ends on a search, so a face found there is followed back over every frame since
the search before it, none of them already handed on. While two faces or more are followed, or a
face is missing, the grid is twice as fine: that is when a fit can slide onto another face, and a
search sets it right. A lost face is searched for at once, and the grid taken up again after it.
With no face in view, searches come 1, 2, 4 … frames apart (never past the grid), so a face that
appears is found within a frame or two and a video without faces costs few searches.
"""

from __future__ import annotations


def to_grid(ordinal: int, every: int) -> int:
    """Frames from the ``ordinal``-th decoded frame (0-based) to the next grid frame after it."""
    return (every - 1 - ordinal) % every or every


class SearchSchedule:
    """The decoded frame (its ordinal in the video) of the next search, and how it moves."""

    def __init__(self, every: int):
        if every < 1:
            raise ValueError(f"searches every {every} frames: it must be at least 1")
        self.every = every
        self.next = 0  # the first frame is searched
        self._empty = 0  # searches in a row that found nothing

    @property
    def among_several(self) -> int:
        """The grid's step while several faces are followed (or one is missing): twice as fine."""
        return max(1, self.every // 2)

    def searched(self, ordinal: int, followed: int, missing: int) -> None:
        """A search ran on the ``ordinal``-th frame, after which ``followed`` faces are followed and
        ``missing`` are missing (kept for a while under their ids)."""
        if followed:
            self._empty = 0
            crowded = followed > 1 or missing > 0
            self.next = ordinal + to_grid(ordinal, self.among_several if crowded else self.every)
        else:
            self._empty += 1
            self.next = ordinal + min(2 ** (self._empty - 1), to_grid(ordinal, self.every))

    def lost(self, ordinal: int) -> None:
        """A followed face was lost on the ``ordinal``-th frame: search it at once."""
        self.next = ordinal
