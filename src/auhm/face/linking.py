"""Joining a video's tracks into people once the whole video is read.

A face hidden for longer than a track is bridged (behind someone for a few seconds, off screen)
comes back as a new track; while the video is read, its colours are often half another face's,
too mixed to say whose it is. At the video's end every track's colours are known from many
frames where no other face touched its box: two tracks one after the other (never both in
view), whose colours agree clearly better than with any other track, and whose gap a person could
have crossed, are one person and take the earlier one's id. Ids are then renumbered 0, 1, 2 …
in the order their people were first confirmed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from auhm.face.looks import look_distance


@dataclass(frozen=True)
class JoinConfig:
    distance: float = 0.35  # Bhattacharyya distance of two tracks' clean colours below which they may be one person
    margin: float = 0.05  # … and no other pairing of either track within this much of it
    speed: float = 1.5  # face widths a second a person may move while out of view
    least_looks: int = 2  # clean looks a track needs before its colours are trusted


@dataclass
class TrackRecord:
    """What the joining needs of one track: its first and last frame and box, and the mean colour
    histogram of its face where no other face's box touched it."""

    id: int
    first: int = -1  # its first frame (-1: none yet)
    last: int = -1
    first_box: np.ndarray | None = None
    last_box: np.ndarray | None = None
    look_sum: np.ndarray | None = None
    looks: int = 0

    def add_frames(self, frames: np.ndarray, boxes: np.ndarray) -> None:
        """Frames (in order) where this track has a face, with its boxes there."""
        if len(frames):
            if self.first_box is None or int(frames[0]) < self.first:
                self.first, self.first_box = int(frames[0]), np.asarray(boxes[0], np.float64)
            if int(frames[-1]) > self.last:
                self.last, self.last_box = int(frames[-1]), np.asarray(boxes[-1], np.float64)

    def cut_after(self, frame: int, box: np.ndarray) -> None:
        """This track's frames end at ``frame`` (where its box is ``box``): those after were handed to another."""
        if self.first_box is not None and self.first <= frame < self.last:
            self.last, self.last_box = frame, np.asarray(box, np.float64)

    def add_look(self, look: np.ndarray | None) -> None:
        if look is not None:
            self.look_sum = look.astype(np.float64) if self.look_sum is None else self.look_sum + look
            self.looks += 1

    def look(self) -> np.ndarray | None:
        return None if self.look_sum is None else (self.look_sum / self.looks).astype(np.float32)


class Written:
    """What a video's tracker wrote under each id: each id's frames and clean looks
    (:class:`TrackRecord`), and rows handed from one id to another once written; at the video's
    end, :meth:`people` says who each row is."""

    def __init__(self):
        self.records: dict[int, TrackRecord] = {}
        self.moved: dict[int, dict[int, int]] = {}  # id → {frame: the id its row there is handed to}

    def record(self, face: int) -> TrackRecord:
        return self.records.setdefault(face, TrackRecord(face))

    def hand_over(self, face: int, to: int, frames: list[int], boxes: np.ndarray, kept: tuple[int, np.ndarray] | None) -> None:
        """The rows of ``face`` on ``frames`` (written, at ``boxes``) are ``to``'s; ``face``'s last
        row is then ``kept`` (frame, box), where known."""
        self.moved.setdefault(face, {}).update({f: to for f in frames})
        self.record(to).add_frames(np.asarray(frames), boxes)
        if kept is not None and face in self.records:
            self.records[face].cut_after(*kept)

    def people(self, fps: float, join: JoinConfig | None) -> People:
        """Who each row is: ids joined into people by :func:`join_tracks` (each itself where ``join``
        is None), after the rows handed on."""
        moved = {face: dict(frames) for face, frames in self.moved.items()}
        if join is None:
            return People({face: face for face in sorted(self.records)}, moved)
        return People(join_tracks(list(self.records.values()), fps, join), moved)


def join_tracks(records: list[TrackRecord], fps: float, config: JoinConfig = JoinConfig()) -> dict[int, int]:
    """Every track id → the id of the person it belongs to (renumbered 0, 1 … in order of the
    people's first ids). Pairs are joined nearest colours first; a pair is skipped where another
    pairing of either track is nearly as near (``margin``), where the two people would be seen at
    once (one track's span of frames overlapping another's), or where one would have moved faster
    than ``speed`` face widths a second between them."""
    records = [r for r in records if r.first_box is not None]
    looks = {r.id: r.look() for r in records if r.looks >= config.least_looks}
    by_id = {r.id: r for r in records}
    pairs = sorted((look_distance(looks[a], looks[b]), a, b) for a in looks for b in looks
                   if a < b and _one_after_another([a, b], by_id))
    of_track: dict[int, list] = {i: [] for i in looks}  # each track's pairings, nearest first
    for pair in pairs:
        of_track[pair[1]].append(pair)
        of_track[pair[2]].append(pair)
    group = {r.id: r.id for r in records}  # track → its person (the group's first id)
    members = {r.id: [r.id] for r in records}
    for d, a, b in pairs:
        if d > config.distance:
            break
        ga, gb = group[a], group[b]
        if ga == gb:
            continue
        if any(_rival(pair, d + config.margin, group, {ga, gb}) for pair in of_track[a] + of_track[b]):
            continue  # either track may as well be someone else
        joined = sorted(members[ga] + members[gb], key=lambda i: by_id[i].first)
        if not _one_after_another(joined, by_id) or not _reachable(joined, by_id, fps, config.speed):
            continue
        keep, gone = min(ga, gb), max(ga, gb)
        for i in members[gone]:
            group[i] = keep
        members[keep] = joined
        del members[gone]
    people = {first: k for k, first in enumerate(sorted(members))}
    return {i: people[group[i]] for i in sorted(group)}


@dataclass(frozen=True)
class People:
    """Who each written row is, known at a video's end: each face id → its person's id
    (:func:`join_tracks`), after rows handed from one id to another on some frames (``moved``:
    id → {frame: id}; a fit that slid onto another face, found out a few frames later)."""

    ids: dict[int, int]
    moved: dict[int, dict[int, int]] = field(default_factory=dict)

    def of(self, face: int, frame: int) -> int:
        """The person of face ``face``'s row on ``frame``."""
        face = self.moved.get(face, {}).get(frame, face)
        return self.ids.get(face, face)

    @property
    def renames(self) -> bool:
        """Whether any row takes another id (else a video's table is written as it is)."""
        return bool(self.moved) or any(face != person for face, person in self.ids.items())


def _rival(pair: tuple, within: float, group: dict[int, int], people: set[int]) -> bool:
    """A pairing nearer than ``within`` of two tracks not yet one person, other than a pairing of
    the two people being joined."""
    d, x, y = pair
    return d < within and group[x] != group[y] and {group[x], group[y]} != people


def _one_after_another(ids: list[int], by_id: dict[int, TrackRecord]) -> bool:
    """Each of these tracks ends before the next begins (one person is one face a frame)."""
    spans = sorted((by_id[i].first, by_id[i].last) for i in ids)
    return all(after[0] > before[1] for before, after in zip(spans, spans[1:]))


def _reachable(ids: list[int], by_id: dict[int, TrackRecord], fps: float, speed: float) -> bool:
    """Each track (in order of its first frame) starts where the one before it ended could have
    walked to: half a face width, and ``speed`` face widths a second of the gap."""
    for before, after in zip(ids, ids[1:]):
        a, b = by_id[before], by_id[after]
        width = max(a.last_box[2] - a.last_box[0], 1.0)
        centre_a, centre_b = (a.last_box[:2] + a.last_box[2:]) / 2, (b.first_box[:2] + b.first_box[2:]) / 2
        if np.hypot(*(centre_b - centre_a)) > width * (0.5 + speed * (b.first - a.last) / fps):
            return False
    return True
