"""Joining a video's tracks into people once the whole video is read.

A face hidden for longer than a track is bridged (behind someone for a few seconds, off screen)
comes back as a new track; while the video is read, its colours are often half another face's,
too mixed to say whose it is. At the video's end every track's colours are known from many
frames where no other face touched its box: two tracks that never share a frame, whose colours
agree clearly better than with any other track, and whose gap a person could have crossed, are
one person and take the earlier one's id. Ids are then renumbered 0, 1, 2 … in the order their
people were first confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auhm.face.looks import look_distance


@dataclass(frozen=True)
class JoinConfig:
    distance: float = 0.3  # Bhattacharyya distance of two tracks' clean colours below which they may be one person
    margin: float = 0.05  # … and no other pairing of either track within this much of it
    speed: float = 1.5  # face widths a second a person may move while out of view
    least_looks: int = 2  # clean looks a track needs before its colours are trusted


@dataclass
class TrackRecord:
    """What the joining needs of one track: the frames it holds, its first and last box, and the
    mean colour histogram of its face where no other face's box touched it."""

    id: int
    frames: list = field(default_factory=list)  # arrays of frame numbers, in order
    first_box: np.ndarray | None = None
    last_box: np.ndarray | None = None
    look_sum: np.ndarray | None = None
    looks: int = 0

    def add_frames(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        """Frames (in order) where this track has a face, with its boxes there."""
        if len(frames):
            if self.first_box is None:
                self.first_box = np.asarray(boxes[0], np.float64)
            self.last_box = np.asarray(boxes[-1], np.float64)
            self.frames.append(np.asarray(frames, np.int64))

    def add_look(self, look: np.ndarray | None) -> None:
        if look is not None:
            self.look_sum = look.astype(np.float64) if self.look_sum is None else self.look_sum + look
            self.looks += 1

    @property
    def first(self) -> int:
        return int(self.frames[0][0])

    @property
    def last(self) -> int:
        return int(self.frames[-1][-1])

    def frame_set(self) -> np.ndarray:
        return np.concatenate(self.frames) if self.frames else np.zeros(0, np.int64)

    def look(self) -> np.ndarray | None:
        return None if self.look_sum is None else (self.look_sum / self.looks).astype(np.float32)


def join_tracks(records: list[TrackRecord], fps: float, config: JoinConfig = JoinConfig()) -> dict[int, int]:
    """Every track id → the id of the person it belongs to (renumbered 0, 1 … in order of the
    people's first ids). Pairs are joined nearest colours first; a pair is skipped where another
    pairing of either track is nearly as near (``margin``), where the two people would share a
    frame, or where one would have moved faster than ``speed`` face widths a second between them."""
    records = [r for r in records if r.frames]
    looks = {r.id: r.look() for r in records if r.looks >= config.least_looks}
    frames = {r.id: r.frame_set() for r in records}
    by_id = {r.id: r for r in records}
    pairs = sorted((look_distance(looks[a], looks[b]), a, b) for a in looks for b in looks
                   if a < b and not np.intersect1d(frames[a], frames[b]).size)
    group = {r.id: r.id for r in records}  # track → its person (the group's first id)
    members = {r.id: [r.id] for r in records}
    for d, a, b in pairs:
        if d > config.distance:
            break
        ga, gb = group[a], group[b]
        if ga == gb:
            continue
        if any(d2 < d + config.margin and {x, y} & {a, b} and group[x] != group[y] and {group[x], group[y]} != {ga, gb}
               for d2, x, y in pairs):
            continue  # either track may as well be someone else
        joined = sorted(members[ga] + members[gb], key=lambda i: by_id[i].first)
        if not _apart_in_time(joined, frames) or not _reachable(joined, by_id, fps, config.speed):
            continue
        keep, gone = min(ga, gb), max(ga, gb)
        for i in members[gone]:
            group[i] = keep
        members[keep] = joined
        del members[gone]
    people = {first: k for k, first in enumerate(sorted(members))}
    return {i: people[group[i]] for i in sorted(group)}


def _apart_in_time(ids: list[int], frames: dict[int, np.ndarray]) -> bool:
    """No frame held by two of these tracks (one person is one face a frame)."""
    every = np.concatenate([frames[i] for i in ids])
    return len(np.unique(every)) == len(every)


def _reachable(ids: list[int], by_id: dict[int, TrackRecord], fps: float, speed: float) -> bool:
    """Each track (in order of its first frame) starts where the one before it ended could have
    walked to: half a face width, and ``speed`` face widths a second of the gap."""
    for before, after in zip(ids, ids[1:]):
        a, b = by_id[before], by_id[after]
        if b.first <= a.last:
            return False
        width = max(a.last_box[2] - a.last_box[0], 1.0)
        centre_a, centre_b = (a.last_box[:2] + a.last_box[2:]) / 2, (b.first_box[:2] + b.first_box[2:]) / 2
        if np.hypot(*(centre_b - centre_a)) > width * (0.5 + speed * (b.first - a.last) / fps):
            return False
    return True
