"""Every face in the video, each with an id that holds: tracking by detection.

A full-frame detection runs on a schedule (:mod:`auhm.face.schedule`: every ``detect_every``-th
decoded frame, twice as often among several faces, at once when a followed face is lost; with no
face in view, after 1, 2, 4 … frames); it is told where the
followed faces are, so a detector that can (a cascade, MTCNN) spends nothing on them
(:meth:`~auhm.face.base.LandmarkBackend.detect_new`). Between detections each
face is followed from its own landmarks, as the single-face :class:`~auhm.face.tracking.Tracker`
does; a backend that fits a batch at once (a network) fits a lone face to the batch's end in one
call, and several faces together in one call only as far as the next search (a loss among them
comes sooner, and what was fitted past it is thrown away), detection frames included
(:class:`~auhm.face.following.Follower`); the faces a search finds are fitted in one call too.
At a detection, faces are matched to tracks by box overlap after each track's motion is carried
forward, with an optimal assignment (``scipy.optimize.linear_sum_assignment``): first the
tracks followed up to this frame, then those missing for at most ``max_gap`` seconds (an
occlusion or a miss, bridged under the old id; a missing face is looked for where its motion
took it and where it was last seen, since someone walking in front drags a hidden face's fit
along), and a detection left over starts a new track.
A new track is confirmed only after ``min_hits`` frames with a face, so a one-frame false
detection makes no track; ids are handed out in order of confirmation (0, 1, 2 …). When two
tracks settle on the same face (one person crossing in front of another), the younger track
loses it there and waits, missing, for its face to come back. A face back after a longer gap (or
far from where it was lost) is re-identified by appearance: a new track whose colour histogram
matches one of a face gone from view, clearly better than any other, takes that face's id. A
face's colours are taken at detections, leaving out what other faces' boxes cover (one of them
may stand in front of it); at each detection a followed face that no longer looks like its track
(a fit that slid onto someone passing close) is let go, and its detection is free for a track of
its own, which takes the rows that fit held since it slid (:mod:`auhm.face.recent`); one whose
size is off from that of the face found there (``find_scale``) is fitted
again from the find; between detections, a fit whose size jumps by more than ``max_step_scale``
from one frame to the next (one sliding between two faces) is lost there and searched for at
once, and so, among several faces, is one whose size drifts past ``max_run_scale`` from where its
run of fits began (one spreading over a face behind or beside it, by steps too small to jump). The
search may hand over unsure finds too (HOG's under its threshold): a false one makes no track,
and only a sure one counts against the model's landmarks when no face fits it. At the video's
end, :meth:`MultiTracker.people` joins its tracks into people (:mod:`auhm.face.linking`).

Everything is a function of the frames alone, in frame order: the same video gives the same
ids and rows whatever the timing of the threads around it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from auhm.face.base import LandmarkBackend, landmark_boxes
from auhm.face.entries import FaceEntries
from auhm.face.boxes import box_iou, box_points, match_overlaps
from auhm.face.following import Follower, Track, first_conflict, fit_on_frame, one_track_a_face, size_off
from auhm.face.linking import JoinConfig, People, Written
from auhm.face.looks import absorbed, appearance, looks_alike, look_distance, nearest_look
from auhm.face.recent import RecentFrames, hand_over, slid_frames
from auhm.face.schedule import SearchSchedule
from auhm.face.tracking import TrackerConfig
from auhm.video import FrameBatch


@dataclass(frozen=True)
class MultiTrackConfig:
    detect_every: int = 16  # full-frame detections on every k-th decoded frame, every k/2-th among several faces (and after a loss)
    max_gap: float = 1.0  # seconds a missing face keeps its id (in frames by the video's fps; 30 frames when it is unknown)
    min_hits: int = 3  # frames with a face before a new track counts (and is written)
    match_iou: float = 0.3  # least overlap of a detection with a track's predicted box
    duplicate_iou: float = 0.5  # two tracks' boxes overlapping more than this hold one face
    max_faces: int | None = None  # at most this many tracks at once (None: no limit)
    reid_distance: float | None = 0.35  # Bhattacharyya distance of colour histograms below which a face is the same (None: no re-identification)
    reid_margin: float = 0.1  # … and the next nearest face at least this much further
    join: JoinConfig | None = field(default_factory=JoinConfig)  # tracks joined into people at the video's end (None: not; needs reid_distance)
    max_step_scale: float = 1.12  # a followed face's size ratio between two frames beyond this: lost (its fit slid between two faces)
    max_run_scale: float = 1.2  # … and among several faces, its size ratio to where a batched run of fits began (one spreading onto a face beside it)
    max_leap: float = 0.25  # a fit leaping further than this share of its width from where its motion took it had slid onto another face
    find_scale: tuple[float, float] = (0.65, 1.25)  # a followed fit's width over its matched sure find's outside this at a search: fitted again from the find
    tracker: TrackerConfig = field(default_factory=TrackerConfig)  # what a plausible fit is (its max_scale_change capped by max_step_scale)


class MultiTracker:
    """Follows every face of a video, batch by batch; ``update`` gives each batch's faces with their ids."""

    def __init__(self, backend: LandmarkBackend, config: MultiTrackConfig = MultiTrackConfig()):
        self.backend = backend
        self.config = config
        limit = min(config.tracker.max_scale_change, config.max_step_scale)
        self._fit_rules = replace(config.tracker, max_scale_change=limit)  # what a plausible fit is, here
        self._follower = Follower(backend, self._fit_rules, config.max_run_scale)  # fits from each face's own landmarks, and those made ahead
        self.detections = 0  # full-frame detections run (all videos)
        self.faces_seen = 0  # most faces in view at one detection in this video (followed, and found beside them)
        self.tracks_made = 0  # confirmed tracks in this video
        self.rejected = 0  # faces the detector found whose fit was not a face (this video)
        self.accepted = 0  # … and whose fit was
        self._tracks: list[Track] = []
        self._gone: list[Track] = []  # confirmed faces no longer tracked: candidates for re-identification
        self._births = 0
        self._schedule = SearchSchedule(config.detect_every)  # which decoded frames are searched
        self._decoded = 0  # frames of this video tracked before this batch
        self._last_detection = -1  # frame of the last detection
        self._min_hits = config.min_hits
        self._max_gap = max(1, round(config.max_gap * 30.0))
        self._fps = 30.0
        self._written = Written()  # each confirmed id's frames and looks, and rows handed on: who each row is, at the end
        self._ids: dict[int, int] = {}  # track key → its id, once confirmed (also after the track is dropped)
        self._recent = RecentFrames(config.detect_every)  # the last frames and fits, for handing a slid fit's rows on

    def start(self, video: str, frames: int | None = None, fps: float | None = None) -> None:
        """A new video; ``frames``, when known, lets a video shorter than ``min_hits`` (a photo) confirm
        its faces at once; ``fps`` turns ``max_gap`` into frame numbers."""
        self._fps = fps if fps and fps > 0 else 30.0
        self._max_gap = max(1, round(self.config.max_gap * self._fps))
        self._written, self._ids = Written(), {}
        self._recent.clear()
        self._min_hits = max(1, min(self.config.min_hits, frames)) if frames else self.config.min_hits
        self._tracks, self._gone, self._births, self._decoded = [], [], 0, 0
        self._schedule = SearchSchedule(self.config.detect_every)
        self._last_detection = -1
        self.faces_seen = self.tracks_made = self.rejected = self.accepted = 0
        self.backend.start(video)

    # ── the batch ─────────────────────────────────────────────────────────────────────────────
    def update(self, batch: FrameBatch) -> FaceEntries:
        known = getattr(self.backend, "read_faces", None)
        if known is not None:  # faces known without looking (truth): every frame is a detection
            return self._update_known(batch, known(batch.indices))
        found: list = []  # (row, track key, landmarks, confidence, scores)
        n, i, first, schedule = len(batch), 0, self._decoded, self._schedule
        while i < n:
            if first + i >= schedule.next:
                found += self._detection_frame(batch, i, found)
                self._last_detection = int(batch.indices[i])
                schedule.searched(first + i, sum(t.live for t in self._tracks), sum(t.id is not None and not t.live for t in self._tracks))
                i += 1
                continue
            j = min(schedule.next - first, n)
            lost_at, kept = self._follow(batch, i, j)
            found += kept
            if lost_at < j:
                schedule.lost(first + lost_at)
            i = lost_at
        self._follower.forget()
        self._decoded += n
        self._recent.add(batch, found)
        return self._entries(batch, found)

    def _entries(self, batch: FrameBatch, found: list) -> FaceEntries:
        """Entries of confirmed tracks only: a track not confirmed by the batch's end is not written,
        one confirmed and then dropped within the batch (gone past ``max_gap``, or found to be an
        older face) is."""
        ids = self._ids
        kept = [(r, ids[k], lm, c, s) for r, k, lm, c, s in found if k in ids]
        for face in sorted({e[1] for e in kept}):
            mine = sorted((e for e in kept if e[1] == face), key=lambda e: e[0])
            self._written.record(face).add_frames(batch.indices[[e[0] for e in mine]], np.array([landmark_boxes(e[2]) for e in mine]))
        return FaceEntries.from_lists(batch, kept)

    def people(self) -> People:
        """After the video: who each written row is (tracks joined by
        :func:`~auhm.face.linking.join_tracks`, every id itself where joining is off; rows a slid fit
        held handed to the face it slid onto)."""
        return self._written.people(self._fps, self.config.join if self.config.reid_distance is not None else None)

    def _confirm(self, track: Track) -> None:
        if track.id is None and track.hits >= self._min_hits:
            old = self._same_look(track)
            if old is not None:  # a face seen before, back after a long gap or far from where it was lost
                track.id = self._ids[track.key] = old.id
                self._gone = [t for t in self._gone if t is not old]
                self._tracks = [t for t in self._tracks if t is not old]
                return
            track.id = self._ids[track.key] = self.tracks_made
            self.tracks_made += 1

    def _same_look(self, track: Track) -> Track | None:
        """The face gone from view (or missing) that ``track`` looks like, clearly more than any other."""
        if self.config.reid_distance is None or track.look is None:
            return None
        live = {t.id for t in self._tracks if t.live and t.id is not None}
        candidates = [(t.look, t.key, t) for t in self._gone + [t for t in self._tracks if not t.live and t.id is not None]
                      if t.look is not None and t.id not in live]
        return nearest_look(track.look, candidates, self.config.reid_distance, self.config.reid_margin)

    def _looks_alike(self, frame: np.ndarray, tracks: list[Track], boxes: np.ndarray) -> np.ndarray:
        """(tracks, boxes) 1 where the face in a box may be the track's by its colours (or either has none), else 0."""
        if self.config.reid_distance is None:
            return np.ones((len(tracks), len(boxes)))
        return looks_alike(frame, [t.look for t in tracks], boxes, self._veto)

    @property
    def _veto(self) -> float:
        """Colour distance beyond which a face is surely not a track's: its missing face found again, or its followed face."""
        return self.config.reid_distance + 1.5 * self.config.reid_margin

    def _still_alike(self, frame: np.ndarray, track: Track, landmarks: np.ndarray, boxes: np.ndarray) -> bool:
        """False where a followed face now looks unlike its track (its fit slid onto another person),
        the face's colours taken without the other faces found."""
        if self.config.reid_distance is None or track.look is None:
            return True
        box = landmark_boxes(landmarks)
        others = boxes[box_iou(box, boxes)[0] < self.config.duplicate_iou] if len(boxes) else boxes
        look = appearance(frame, landmarks, others)
        return look is None or look_distance(track.look, look) <= self._veto

    def _holds(self, frame: np.ndarray, track: Track, landmarks: np.ndarray, boxes: np.ndarray, found: np.ndarray | None) -> bool:
        """Whether a followed fit is still the track's face at a search: it looks like the track, and
        its size is not far off that of the sure find matched to it (``found``, where there is one)."""
        return self._still_alike(frame, track, landmarks, boxes) and (found is None or not size_off(landmarks, found, self.config.find_scale))

    def _remember_look(self, track: Track, frame: np.ndarray, landmarks: np.ndarray, others: np.ndarray) -> np.ndarray | None:
        """Absorb the face's colours, without what ``others`` cover, into its track's; the look taken."""
        look = appearance(frame, landmarks, others) if self.config.reid_distance is not None else None
        track.look, track.looks = absorbed(track.look, track.looks, look, self.config.reid_distance)
        return look

    def _expire(self, frame: int) -> None:
        """Forget tracks missing for longer than the gap a face may be bridged over (and unconfirmed
        ones that lost their face); at each detection, so that it never depends on where batches end."""
        gap = self._max_gap
        keep = [t for t in self._tracks if t.live or (t.id is not None and frame - t.frame <= gap)]
        self._gone += [t for t in self._tracks if t not in keep and t.id is not None and t.look is not None]
        self._gone = self._gone[-64:]
        self._tracks = keep

    # ── following, between detections ─────────────────────────────────────────────────────────
    def _follow(self, batch: FrameBatch, i: int, j: int) -> tuple[int, list]:
        """Fit every live track on frames [i, j) from its own landmarks; (the first frame where one
        was lost, the entries up to there)."""
        live = [t for t in self._tracks if t.live]
        upto = min(j + 1, len(batch)) if self.backend.batched_fit else j  # a batched fit goes through the search at j, which reads it
        ahead = self._follower.fits(batch, i, upto, live)
        fits = {key: a.fits for key, a in ahead.items()}
        lost_at = min([i + len(f[0]) for f in fits.values()] + [j])
        lost_at = first_conflict(i, lost_at, live, fits, self.config.duplicate_iou)
        if lost_at == i:  # a track is lost (or two merge) on the first frame: settle it with a detection there
            return i, []
        found = []
        for t in live:
            landmarks, confidence, scores = fits[t.key]
            for r in range(i, lost_at):
                t.seen(int(batch.indices[r]), landmarks[r - i], float(confidence[r - i]))
                self._confirm(t)
                found.append((r, t.key, landmarks[r - i], float(confidence[r - i]), None if scores is None else scores[r - i]))
        self._follower.keep_after(ahead, lost_at)
        return lost_at, found

    # ── detection frames ──────────────────────────────────────────────────────────────────────
    def _detection_frame(self, batch: FrameBatch, r: int, before: list) -> list:
        """The faces of search row ``r``; ``before``: the batch's entries so far (a face found here
        is followed back over them, and takes those a fit let go here held of it)."""
        frame, index = batch.frames[r], int(batch.indices[r])
        self._expire(index)
        self.detections += 1
        live = [t for t in self._tracks if t.live]
        followed = self._follower.on_row(batch, r, live)
        known = np.array([landmark_boxes(fit[0]) for fit in followed.values()], np.float64).reshape(-1, 4)
        searched = self.backend.detect_new(frame, known)
        boxes = np.array([np.asarray(box, np.float64) for box, _ in searched]).reshape(-1, 4)
        sure = np.array([score >= self.backend.sure_score for _, score in searched], bool)
        new = int(((box_iou(boxes, known).max(1, initial=0.0) <= self.config.duplicate_iou) & sure).sum())  # found beside the followed
        self.faces_seen = max(self.faces_seen, len(known) + new)  # the faces followed, and those found beside them
        taken = {d: t.key for d, t in self._associate(frame, index, boxes).items()}  # detection → track key
        missing = sorted((t for t in self._tracks if not t.live), key=lambda t: -t.frame)
        detection_of = {k: d for d, k in taken.items()}
        box_of = {k: boxes[d] for d, k in taken.items()}
        sure_box = {k: box_of[k] for k in box_of if sure[detection_of[k]]}
        held = {t.key: fit for t in live if (fit := followed.get(t.key)) is not None and self._holds(frame, t, fit[0], boxes, sure_box.get(t.key))}
        wanted = [d for d in range(len(boxes)) if taken.get(d) not in held]  # fitted from the box alone, in one call
        finds = dict(zip(wanted, fit_on_frame(self.backend, self._fit_rules, frame, [box_points(boxes[d]) for d in wanted])))
        fitted = []  # (track, landmarks, confidence, scores)
        released: dict[int, Track] = {}  # detection → the followed track that let it go (its fit had slid onto that face)
        slid_onto: dict[int, Track] = {}  # new track key → that followed track, when the new face is its detection
        for t in live:  # followed faces: from their own landmarks (unless followed onto someone else), else from their detection
            fit = held.get(t.key)
            if fit is None and t.key in box_of:
                self._follower.forget(t.key)  # found again from its detection: what was fitted ahead no longer follows
                fit = finds[detection_of[t.key]]
                if fit is not None and not self._still_alike(frame, t, fit[0], boxes):
                    fit = None  # … and so is its detection: someone else's, free for a track of their own
                    released[detection_of[t.key]] = t
                    taken = {d: k for d, k in taken.items() if k != t.key}
            if fit is None:
                t.live = False
            else:
                fitted.append((t, *fit))
        for t in missing:  # faces found again after a gap
            if t.key in box_of:
                fit = finds[detection_of[t.key]]
                self._judged(fit, sure[detection_of[t.key]])
                if fit is not None:
                    fitted.append((t, *fit))
        limit = self.config.max_faces
        newcomers = sorted((d for d in range(len(boxes)) if d not in taken), key=lambda d: -_area(boxes[d]))
        for d in newcomers:
            if limit is not None and len(fitted) >= limit:
                break
            fit = finds[d]
            self._judged(fit, sure[d])
            if fit is not None:
                self._births += 1
                t = Track(self._births, fit[0], fit[1], index, hits=0, live=False)
                self._tracks.append(t)
                fitted.append((t, *fit))
                if d in released:
                    slid_onto[t.key] = released[d]
        fitted = one_track_a_face(frame, fitted, self.config.duplicate_iou, self.config.reid_distance or 0.0)
        self.faces_seen = max(self.faces_seen, len(fitted))  # … and an unsure find that proved a face
        kept = {t.key for t, *_ in fitted}
        for t in self._tracks:
            if t.key not in kept:
                t.live = False
                self._follower.forget(t.key)
        found = []
        born = {t.key for t in self._tracks if t.hits == 0}
        for t, landmarks, confidence, scores in fitted:
            t.seen(index, landmarks, confidence)
            others = np.array([landmark_boxes(g[1]) for g in fitted if g[0] is not t]).reshape(-1, 4)
            look = self._remember_look(t, frame, landmarks, others)  # what no other face covers
            released, handed = slid_onto.get(t.key), {}  # … the fit let go here, and the rows it held of this face
            if released is not None:
                frames, fits = self._recent.with_batch(batch, r, before)
                handed = slid_frames(frames, fits, index, self._last_detection, t, released, self._veto, self.config.max_leap)
            if t.key in born:  # a face found now may have been there since the last detection: follow it back
                found += self._follow_back(batch, r, t, landmarks, confidence, before, handed, released)
                t.hits += len(handed)
            self._confirm(t)
            if handed and t.id is not None:
                hand_over(batch, before, fits, self._written, released, t, handed)
            if t.id is not None and not (box_iou(landmark_boxes(landmarks), others) > 0).any():  # no other face touches it: a clean look
                self._written.record(t.id).add_look(look)
            found.append((r, t.key, landmarks, confidence, scores))
        return found

    def _follow_back(self, batch: FrameBatch, r: int, t: Track, landmarks: np.ndarray, confidence: float,
                     before: list, handed: dict[int, np.ndarray], released: Track | None) -> list:
        """Entries of a new face on the frames of this batch since the last detection, fitted backwards
        from where it was found, up to the first frame where it is not (or another face is, other
        than a fit ``released`` here whose rows are ``handed`` to it). The face is followed in
        reversed time, a search interval among several faces at a time, its motion carried on from
        what it did in the frames fitted so far: a face that walked in is found where it was."""
        start = r
        while start > 0 and batch.indices[start - 1] > self._last_detection:
            start -= 1
        rows = np.arange(r - 1, start - 1, -1)
        taken: dict[int, list] = {}  # row → (track key, box) of the batch's entries there
        for row, key, points, *_ in before:
            if start <= row < r:
                taken.setdefault(row, []).append((key, landmark_boxes(points)))
        probe = Track(t.key, landmarks, confidence, -int(batch.indices[r]))  # frame numbers negated: time runs backwards
        chunk = self._schedule.among_several
        out = []
        for first in range(0, len(rows), chunk):
            part = rows[first : first + chunk]
            back = FrameBatch(-batch.indices[part], batch.timestamps[part], batch.frames[part])
            fitted, conf, scores = self._follower.fit_track(back, 0, len(part), probe)
            for k in range(len(fitted)):
                row = int(part[k])
                box = landmark_boxes(fitted[k])
                on = {key for key, other in taken.get(row, []) if box_iou(box, other)[0, 0] > self.config.duplicate_iou}
                if on and not (released is not None and on == {released.key} and int(batch.indices[row]) in handed):
                    return out
                if not on:
                    t.hits += 1
                    out.append((row, t.key, fitted[k], float(conf[k]), None if scores is None else scores[k]))
                probe.seen(-int(batch.indices[row]), fitted[k], float(conf[k]))
            if len(fitted) < len(part):
                break
        return out

    def _associate(self, frame: np.ndarray, index: int, boxes: np.ndarray) -> dict[int, Track]:
        """Which track each found box belongs to: by overlap with where each track's motion puts it,
        an optimal assignment, first among the tracks followed up to now, then among those missing
        (the most recently seen first), where a face that looks otherwise is not theirs."""
        taken: dict[int, Track] = {}
        live = [t for t in self._tracks if t.live]
        missing = sorted((t for t in self._tracks if not t.live), key=lambda t: -t.frame)
        for group in (live, missing):
            free = [d for d in range(len(boxes)) if d not in taken]
            if not group or not free:
                continue
            overlap = box_iou(np.array([t.predicted_box(index) for t in group]), boxes[free])
            if group is missing:  # after a gap, where a face went is a guess: where its motion took it, or where it was
                overlap = np.maximum(overlap, box_iou(np.array([t.box() for t in group]), boxes[free]))
                overlap *= self._looks_alike(frame, group, boxes[free])
            for a, b in match_overlaps(overlap, self.config.match_iou):
                taken[free[b]] = group[a]
        return taken

    def _judged(self, fit, sure: bool) -> None:
        """Count a detection's fit as accepted or rejected (what says whether the model's landmarks
        can be trusted on this video); a rejected find the detector was not sure of says nothing."""
        if fit is not None:
            self.accepted += 1
        elif sure:
            self.rejected += 1

    # ── faces known by frame number ───────────────────────────────────────────────────────────
    def _update_known(self, batch: FrameBatch, faces: list[list[np.ndarray]]) -> FaceEntries:
        found = []
        for r, points in enumerate(faces):
            index = int(batch.indices[r])
            self.detections += 1  # every frame's faces are known: each counts as a detection
            self.faces_seen = max(self.faces_seen, len(points))
            boxes = np.array([landmark_boxes(p) for p in points]).reshape(-1, 4)
            taken = self._associate(batch.frames[r], index, boxes)
            for d in range(len(boxes)):
                if d not in taken and (self.config.max_faces is None or len(taken) < self.config.max_faces):
                    self._births += 1
                    taken[d] = Track(self._births, points[d], 1.0, index, hits=0, live=False)
                    self._tracks.append(taken[d])
            for t in self._tracks:
                if t not in taken.values():
                    t.live = False
            for d, t in taken.items():  # known faces are no false detections: confirmed at once
                t.seen(index, np.asarray(points[d], np.float32), 1.0)
                t.hits = max(t.hits, self._min_hits)
                self._confirm(t)
                found.append((r, t.key, np.asarray(points[d], np.float32), 1.0, None))
            self._expire(index)
        return self._entries(batch, found)


def _area(box: np.ndarray) -> float:
    return float(max(box[2] - box[0], 0) * max(box[3] - box[1], 0))
