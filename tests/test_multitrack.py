"""The multi-face tracker: ids that hold through crossings and gaps, no track from a one-frame
detection, re-identification after a long gap, and the same ids whatever the batching."""

from __future__ import annotations

import numpy as np
import pytest

from auhm.face.base import LandmarkBackend
from auhm.face.boxes import box_iou as iou
from auhm.face.multitrack import MultiTrackConfig, MultiTracker
from auhm.face.recent import leapt
from auhm.video import FrameBatch

from helpers import inscribed_ring

W, H, SIDE = 320, 120, 40
COLOURS = {"red": (220, 40, 40), "green": (40, 200, 60), "blue": (50, 70, 230)}


def colour_boxes(frame: np.ndarray) -> list[np.ndarray]:
    """The visible part of each coloured square, one box per colour present."""
    boxes = []
    for rgb in COLOURS.values():
        ys, xs = np.nonzero((np.abs(frame.astype(int) - rgb).sum(-1) < 30))
        if len(xs) >= 30:
            boxes.append(np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.float64))
    return boxes


class BlobBackend(LandmarkBackend):
    """Detects coloured squares; ``fit`` finds the square overlapping the region most (any colour:
    a track whose square is hidden lands on the one in front, as a real fit would)."""

    name = "blob"
    min_confidence = 0.5

    def __init__(self):
        self.detected = 0

    def detect(self, frames):
        self.detected += len(frames)
        return [[(b, 1.0) for b in colour_boxes(f)] for f in frames]

    def fit(self, frames, regions):
        regions = np.asarray(regions, np.float64)
        out = np.full((len(frames), 68, 2), np.nan, np.float32)
        conf = np.zeros(len(frames), np.float32)
        for k, (frame, region) in enumerate(zip(frames, regions)):
            box = np.concatenate([region.min(0), region.max(0)])
            found = colour_boxes(frame)
            if found:
                overlap = iou(box, np.array(found))[0]
                best = int(np.argmax(overlap))
                if overlap[best] > 0:
                    out[k], conf[k] = inscribed_ring(found[best]), 1.0
        return out, conf


def scene(n: int, people: dict) -> tuple[np.ndarray, dict]:
    """Frames with squares drawn in the given order (later ones in front); people: colour →
    (x of frame i, frames present[, side]). Also each square's visible truth box per frame."""
    frames = np.full((n, H, W, 3), 128, np.uint8)
    truth: dict = {c: {} for c in people}
    for i in range(n):
        for colour, (x_of, present, *side) in people.items():
            if present(i):
                x, d = int(x_of(i)), (side[0] if side else SIDE)
                frames[i, 40 - (d - SIDE) // 2 : 40 - (d - SIDE) // 2 + d, x : x + d] = COLOURS[colour]
        for colour in people:
            for b in colour_boxes(frames[i]):
                if (frames[i, int(b[1]), int(b[0]) : int(b[2])] == COLOURS[colour]).all(-1).any():
                    truth[colour][i] = b
    return frames, truth


def stamped(frames: np.ndarray) -> np.ndarray:
    """The frames with each one's number written into its corner pixel (too small to be a square)."""
    frames = frames.copy()
    frames[:, 0, 0, 0], frames[:, 0, 0, 1] = np.arange(len(frames)) % 256, np.arange(len(frames)) // 256
    return frames


def stamp(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def run(frames: np.ndarray, batch: int = 16, backend: LandmarkBackend | None = None, **config) -> dict[int, dict[int, np.ndarray]]:
    """{frame: {id: box}} from the tracker, fed ``batch`` frames at a time."""
    return follow(MultiTracker(backend or BlobBackend(), MultiTrackConfig(**config)), frames, batch)


def follow(tracker: MultiTracker, frames: np.ndarray, batch: int = 16, step: int = 1) -> dict[int, dict[int, np.ndarray]]:
    """{frame: {id: box}} from ``tracker``, fed ``batch`` frames at a time (every ``step``-th frame, as ``--every`` does)."""
    kept = np.arange(0, len(frames), step)
    tracker.start("scene", len(kept))
    out: dict = {}
    for s in range(0, len(kept), batch):
        idx = kept[s : s + batch]
        found = tracker.update(FrameBatch(idx, idx / 10.0, frames[idx]))
        for r, face, box in zip(found.rows, found.ids, found.boxes):
            out.setdefault(int(idx[r]), {})[int(face)] = box
    return out


def ids_of(out: dict, truth: dict) -> dict[str, set]:
    """Which ids each true square got (by overlap), over the frames it is visible."""
    got = {c: set() for c in truth}
    for colour, frames in truth.items():
        for i, box in frames.items():
            for face, b in out.get(i, {}).items():
                if iou(box, b)[0, 0] > 0.5:
                    got[colour].add(face)
    return got


class LeavingOut(BlobBackend):
    """Its search leaves out the faces the tracker says it follows (as MTCNN does); it keeps what it
    was told, and the frames searched (their :func:`stamp`)."""

    def __init__(self):
        super().__init__()
        self.told: list[np.ndarray] = []
        self.searched: list[int] = []

    def detect_new(self, frame, followed):
        self.told.append(np.asarray(followed, np.float64).reshape(-1, 4))
        self.searched.append(stamp(frame))
        return [(b, 1.0) for b in colour_boxes(frame) if not len(followed) or iou(b, followed).max() <= 0.3]


def test_two_faces_that_cross_keep_their_ids():
    """Red walks right, green left, green passes in front of red and hides it for a few frames."""
    n = 80
    frames, truth = scene(n, {"red": (lambda i: 20 + 3 * i, lambda i: True), "green": (lambda i: 260 - 3 * i, lambda i: True)})
    hidden = [i for i in range(n) if i not in truth["red"]]
    assert hidden, "the scene must hide red behind green for a while"
    out = run(frames)
    got = ids_of(out, truth)
    assert got["red"] == {0} and got["green"] == {1}
    assert {f for faces in out.values() for f in faces} == {0, 1}  # no third track
    found = sum(1 for c in truth for i, b in truth[c].items() if any(iou(b, x)[0, 0] > 0.5 for x in out.get(i, {}).values()))
    assert found >= 0.9 * sum(len(t) for t in truth.values())


def test_a_one_frame_detection_makes_no_track():
    frames, _ = scene(30, {"red": (lambda i: 30, lambda i: True), "blue": (lambda i: 200, lambda i: i == 8)})
    out = run(frames, detect_every=1)
    assert {f for faces in out.values() for f in faces} == {0}
    assert sorted(out) == list(range(30))


def test_a_face_back_after_a_long_gap_keeps_its_id_by_appearance():
    """Green leaves for 40 frames (past --max-gap) and comes back elsewhere; red stays. Without
    re-identification green would be a new id."""
    far = lambda i: 40 if i < 20 else 250  # noqa: E731
    frames, truth = scene(90, {"red": (lambda i: 150, lambda i: True), "green": (far, lambda i: i < 20 or i >= 60)})
    out = run(frames, max_gap=10 / 30)
    assert ids_of(out, truth) == {"red": {1}, "green": {0}} or ids_of(out, truth) == {"red": {0}, "green": {1}}
    plain = run(frames, max_gap=10 / 30, reid_distance=None)
    assert len({f for faces in plain.values() for f in faces}) == 3  # the same scene without it: a third id


def test_the_same_frames_give_the_same_ids_and_boxes():
    frames, _ = scene(60, {"red": (lambda i: 20 + 3 * i, lambda i: True), "green": (lambda i: 260 - 3 * i, lambda i: i > 5)})
    a, b = run(frames, batch=7), run(frames, batch=7)
    assert sorted(a) == sorted(b)
    for i in a:
        assert sorted(a[i]) == sorted(b[i])
        for face in a[i]:
            np.testing.assert_array_equal(a[i][face], b[i][face])


@pytest.mark.parametrize("every", [1, 8])
def test_a_face_that_enters_is_found_within_the_detection_schedule(every):
    frames, truth = scene(40, {"red": (lambda i: 30, lambda i: i >= 13)})
    out = run(frames, detect_every=every)
    first = min(out)
    assert 13 <= first <= 13 + every - 1 + 2  # its first frame, found at the next detection (confirmed from there)
    assert all(0 in out[i] for i in range(first, 40))


def test_a_face_hidden_behind_another_for_a_while_keeps_its_id():
    """Green, larger, stands in front; red walks behind it and is hidden for many frames. Its
    track lands on green's face meanwhile and must give way; red comes out with its own id."""
    n = 90
    frames, truth = scene(n, {"red": (lambda i: 40 + i, lambda i: True), "green": (lambda i: 100, lambda i: True, 52)})
    hidden = [i for i in range(n) if i not in truth["red"]]
    assert len(hidden) >= 8
    out = run(frames)
    got = ids_of(out, truth)
    assert len(got["red"]) == 1 and len(got["green"]) == 1 and got["red"] != got["green"]  # one id each, throughout
    assert {f for faces in out.values() for f in faces} == got["red"] | got["green"] and all(len(faces) <= 2 for faces in out.values())


def test_a_different_face_where_a_missing_one_was_gets_a_new_id():
    """Red leaves (a gap shorter than --max-gap) and blue appears where red was: overlap alone would
    give blue red's id; their colours tell them apart."""
    frames, truth = scene(60, {"red": (lambda i: 100, lambda i: i < 20), "blue": (lambda i: 100, lambda i: i >= 26)})
    out = run(frames, max_gap=1.0)
    got = ids_of(out, truth)
    assert got["red"] == {0} and got["blue"] == {1}



def test_a_face_back_partly_behind_another_keeps_its_id_by_its_uncovered_part():
    """Green leaves for 40 frames and comes back beside red, a small square in front of part of its
    face, where it stays: green's colours are taken without red's box, so it keeps its id (taken
    with it, or not at all while red covers it, green would be a third id)."""
    side = 24
    frames, truth = scene(100, {"green": (lambda i: 40 if i < 20 else 250, lambda i: i < 20 or i >= 60),
                                "red": (lambda i: 278, lambda i: True, side)})
    assert (frames[70, 40:80, 250:290] == COLOURS["red"]).all(-1).any()  # red covers part of green's square
    out = run(frames, max_gap=10 / 30)
    got = ids_of(out, truth)
    assert len(got["green"]) == 1 and len(got["red"]) == 1 and got["green"] != got["red"]
    assert {f for faces in out.values() for f in faces} == got["green"] | got["red"]


def test_appearance_leaves_out_hidden_boxes_and_gives_up_when_most_is_hidden():
    from auhm.face.looks import appearance, look_distance

    frame = np.zeros((60, 60, 3), np.uint8)
    frame[:, :30] = COLOURS["red"]
    frame[:, 30:] = COLOURS["blue"]
    face = np.array([[10.0, 10.0], [50.0, 50.0]])  # half red, half blue
    blue_only = appearance(frame[:, 30:].copy(), np.array([[0.0, 10.0], [20.0, 50.0]]))
    left_hidden = appearance(frame, face, hidden=np.array([[0, 0, 30, 60]]))
    assert look_distance(left_hidden, blue_only) < 1e-6
    assert look_distance(appearance(frame, face), blue_only) > 0.3
    assert appearance(frame, face, hidden=np.array([[0, 0, 42, 60]])) is None  # 80 % hidden


class BatchedBlobBackend(BlobBackend):
    """The same fits, declared batched (as a network's are): the tracker may fit a batch at once."""

    batched_fit = True

    def __init__(self):
        super().__init__()
        self.calls = 0

    def fit(self, frames, regions):
        self.calls += 1
        return super().fit(frames, regions)


def test_a_batched_backend_follows_a_face_with_one_fit_a_batch_and_gives_the_same_faces():
    """Detections every 8 frames inside 16-frame batches: the frames after a detection are fitted in
    the call that fitted it, so one face costs one call a batch (and one when it is found)."""
    frames, _ = scene(64, {"red": (lambda i: 20 + 2 * i, lambda i: True)})
    batched = BatchedBlobBackend()
    out = run(frames, batch=16, backend=batched, detect_every=8)
    assert batched.calls == 64 // 16 + 1
    plain = run(frames, batch=16, detect_every=8)
    assert sorted(out) == sorted(plain) == list(range(64))
    for i in out:
        assert sorted(out[i]) == sorted(plain[i]) == [0]
        np.testing.assert_array_equal(out[i][0], plain[i][0])
    crossing, truth = scene(80, {"red": (lambda i: 20 + 3 * i, lambda i: True), "green": (lambda i: 260 - 3 * i, lambda i: True)})
    got = ids_of(run(crossing, batch=16, backend=BatchedBlobBackend()), truth)
    assert got["red"] == {0} and got["green"] == {1}


def test_a_track_that_slid_onto_another_face_lets_it_go_at_the_next_detection():
    """Red stands still and vanishes at frame 30 where green appears, overlapping it: red's track
    slides onto green (a fit takes the face nearest), until the detection at 32 sees that green
    does not look like red; from then on green has an id of its own."""
    frames, truth = scene(64, {"red": (lambda i: 100, lambda i: i < 30), "green": (lambda i: 112, lambda i: i >= 30)})
    out = run(frames, detect_every=8)
    red_id = {f for i in range(30) for f in out.get(i, {})}
    assert red_id == {0}
    after = {f for i in range(32, 64) for f in out.get(i, {})}
    assert len(after) == 1 and after != red_id
    assert all(i in out for i in range(32, 64))  # green followed from the detection on


def as_people(tracker: MultiTracker, out: dict) -> dict[int, dict[int, np.ndarray]]:
    """``out`` ({frame: {id: box}}) with each row's id as the video's end gives it (:meth:`MultiTracker.people`)."""
    people = tracker.people()
    return {i: {people.of(face, i): box for face, box in faces.items()} for i, faces in out.items()}


@pytest.mark.parametrize("batch, step, written", [(16, 1, {}), (4, 1, {26: 1, 27: 1}), (2, 2, {26: 1})])
def test_the_rows_a_slid_fit_held_are_handed_to_the_face_it_slid_onto(batch, step, written):
    """Red vanishes at frame 26 where green stands, overlapping it: red's fit slides onto green
    (it leaps a third of a face) and holds it until the search at 31 (30, every second frame
    decoded) lets it go. Green's track, born there, takes the rows since the slide: those of its
    batch at once, those already ``written`` (smaller batches) at the video's end."""
    frames, truth = scene(48, {"red": (lambda i: 100, lambda i: i < 26), "green": (lambda i: 112, lambda i: i >= 26)})
    tracker = MultiTracker(BlobBackend(), MultiTrackConfig(detect_every=8))
    out = as_people(tracker, follow(tracker, frames, batch, step))
    green = {f for i in range(32, 48, step) for f in out[i]}
    assert len(green) == 1
    assert all(set(out[i]) == green for i in range(26, 48, step))
    assert {f for i in range(0, 26, step) for f in out.get(i, {})} == {0} != green  # (batches of 2: red's first, unconfirmed, rows are not written)
    assert tracker.people().moved == ({0: written} if written else {})
    spans = {r.id: (r.first, r.last) for r in tracker._written.records.values()}  # what joining tracks into people is told
    assert spans == {0: (min(i for i in out if 0 in out[i]), 26 - step), 1: (26, 48 - step)}


def test_a_leap_is_a_jump_both_from_where_a_fit_was_and_from_where_its_motion_took_it():
    def at(x: float) -> np.ndarray:
        return inscribed_ring(np.array([x, 40.0, x + 40.0, 80.0]))

    assert leapt(at(100), at(100), at(112), 0.25)  # still, then a third of a face over
    assert not leapt(at(100), at(100), at(108), 0.25)
    assert not leapt(at(88), at(100), at(112), 0.25)  # walking fast: where its motion took it
    assert not leapt(at(112), at(100), at(100), 0.25)  # stopped after a leap: no new leap


def test_a_track_look_takes_in_what_agrees_with_it_and_not_another_face():
    from auhm.face.looks import absorbed, appearance, look_distance

    def look(rgb):
        frame = np.zeros((20, 20, 3), np.uint8)
        frame[:] = rgb
        return appearance(frame, np.array([[0.0, 0.0], [20.0, 20.0]]))

    red, dark_red, blue = look(COLOURS["red"]), look((200, 30, 30)), look(COLOURS["blue"])
    mean, count = absorbed(None, 0, red, 0.3)
    assert count == 1 and look_distance(mean, red) < 1e-6
    assert absorbed(mean, count, None, 0.3) == (mean, count)
    mixed, n = absorbed(mean, count, dark_red, 0.3)
    assert n == 2 and np.allclose(mixed, (red + dark_red) / 2)
    kept, n = absorbed(mixed, n, blue, 0.3)  # another face: left out
    assert n == 2 and np.array_equal(kept, mixed)


def test_two_skin_tones_a_few_hues_apart_are_two_people_and_one_tone_in_shade_is_one():
    """Faces shaded from light to dark, with a little noise in hue (as skin is): over the hues of
    skin, any two tones 6 hue steps apart (of OpenCV's 180) look like two people to the tracker,
    one tone lit 15 % darker like one person."""
    import cv2

    from auhm.face.looks import appearance, look_distance

    rng = np.random.default_rng(0)

    def face(hue: float, light: float = 1.0) -> np.ndarray:
        shade = np.linspace(235, 120, 40)[:, None] * light
        hsv = np.stack(np.broadcast_arrays(hue + rng.normal(0, 1, (40, 40)), 120 + rng.normal(0, 8, (40, 40)), shade), -1)
        rgb = cv2.cvtColor(np.clip(hsv, 0, 255).astype(np.uint8), cv2.COLOR_HSV2RGB)
        return appearance(rgb, np.array([[0.0, 0.0], [40.0, 40.0]]))

    same_person = MultiTrackConfig().reid_distance
    skin = range(4, 26)
    assert min(look_distance(face(hue), face(hue + 6)) for hue in skin) > same_person
    assert max(look_distance(face(hue), face(hue, light=0.85)) for hue in skin) < same_person


def test_a_search_that_leaves_out_the_followed_faces_keeps_the_same_ids():
    """The tracker tells each search where the faces it follows are; a detector that then finds only
    the others (a cascade saving its cost) gives the same ids through a crossing."""
    frames, truth = scene(80, {"red": (lambda i: 20 + 3 * i, lambda i: True), "green": (lambda i: 260 - 3 * i, lambda i: True)})
    backend = LeavingOut()
    out = run(stamped(frames), backend=backend, detect_every=8)
    assert ids_of(out, truth) == ids_of(run(frames, detect_every=8), truth) == {"red": {0}, "green": {1}}
    told = backend.told[1:]  # from the second search on, both squares are followed (apart from the crossing)
    assert sum(len(t) == 2 for t in told) >= len(told) - 2
    for i, boxes in zip(backend.searched[1:], told):
        for box in boxes:
            assert any(iou(box, b)[0, 0] > 0.5 for b in (truth["red"].get(i), truth["green"].get(i)) if b is not None)


class NoReidWhileReading(MultiTracker):
    """Re-identifies no face while reading (as when its colours are mixed with another face's then)."""

    def _same_look(self, track):
        return None


def test_tracks_of_one_face_are_joined_into_one_person_at_the_videos_end():
    """Green leaves for 40 frames (past --max-gap) and comes back near where it went; not
    re-identified while reading, it comes back as a third id, and the video's end joins it to
    green's first."""
    frames, truth = scene(90, {"red": (lambda i: 200, lambda i: True),
                               "green": (lambda i: 40 if i < 20 else 90, lambda i: i < 20 or i >= 60)})
    tracker = NoReidWhileReading(BlobBackend(), MultiTrackConfig(max_gap=10 / 30))
    got = ids_of(follow(tracker, frames), truth)
    assert len(got["green"]) == 2 and len(got["red"]) == 1
    people = tracker.people().ids
    assert {people[i] for i in got["green"]} == {people[min(got["green"])]} and people[min(got["red"])] not in {people[i] for i in got["green"]}
    assert sorted(set(people.values())) == [0, 1]
    apart = NoReidWhileReading(BlobBackend(), MultiTrackConfig(max_gap=10 / 30, join=None))
    follow(apart, frames)
    assert apart.people().ids == {0: 0, 1: 1, 2: 2}


def test_a_fit_that_changes_size_too_fast_is_searched_again_at_once():
    """Red's square grows by a third from one frame to the next: a fit that jumps so is a fit that
    slid between two faces, so the tracker searches that frame at once (and finds red again)."""
    n = 40
    frames, truth = scene(n, {"red": (lambda i: 100, lambda i: i < 20)})
    frames[20:] = scene(n, {"red": (lambda i: 96, lambda i: True, 52)})[0][20:]
    strict = MultiTracker(BlobBackend(), MultiTrackConfig(detect_every=100))
    lax = MultiTracker(BlobBackend(), MultiTrackConfig(detect_every=100, max_step_scale=1.5))
    out_strict = follow(strict, frames)
    follow(lax, frames)
    assert strict.detections == lax.detections + 1  # one more search, at the jump
    assert {f for faces in out_strict.values() for f in faces} == {0} and sorted(out_strict) == list(range(n))


class WithFalseFinds(BlobBackend):
    """Also finds a grey patch (no square: no fit there), scored ``score``; finds under 0.5 are
    candidates it is unsure of."""

    sure_score = 0.5

    def __init__(self, score: float):
        super().__init__()
        self.score = score

    def detect(self, frames):
        return [found + [(np.array([250.0, 60.0, 290.0, 100.0]), self.score)] for found in super().detect(frames)]


def test_a_false_find_the_detector_was_unsure_of_does_not_count_against_the_landmarks():
    """Rejected fits count against trusting the model's landmarks on a video only where the
    detector was sure of its find (a candidate under its threshold says nothing)."""
    frames, _ = scene(20, {"red": (lambda i: 30, lambda i: True)})
    for score, rejected in ((0.3, 0), (0.9, 3)):
        tracker = MultiTracker(WithFalseFinds(score), MultiTrackConfig(detect_every=8))
        out = follow(tracker, frames)
        assert tracker.rejected == rejected and tracker.accepted >= 1
        assert {f for faces in out.values() for f in faces} == {0}



def test_searches_fall_on_the_last_frame_of_every_k_and_twice_as_often_among_several_faces():
    one, _ = scene(64, {"red": (lambda i: 30, lambda i: True)})
    backend = LeavingOut()
    run(stamped(one), batch=32, backend=backend, detect_every=16)
    assert backend.searched == [0, 15, 31, 47, 63]
    two, _ = scene(64, {"red": (lambda i: 30, lambda i: True), "green": (lambda i: 200, lambda i: True)})
    backend = LeavingOut()
    run(stamped(two), batch=32, backend=backend, detect_every=16)
    assert backend.searched == [0, 7, 15, 23, 31, 39, 47, 55, 63]


def test_a_face_that_enters_between_two_searches_is_written_from_where_it_entered():
    """Batches of 32 frames end on a search (every 16): green, entering on frame 20, is found on
    frame 31 and followed back to 20, all in the batch not yet handed on."""
    frames, truth = scene(64, {"red": (lambda i: 30, lambda i: True), "green": (lambda i: 200, lambda i: i >= 20)})
    out = run(frames, batch=32, detect_every=16)
    got = ids_of(out, truth)
    assert got == {"red": {0}, "green": {1}}
    assert min(i for i, faces in out.items() if 1 in faces) == 20


def test_a_face_found_late_is_followed_back_along_its_own_motion():
    """Green appears on frame 1 and walks left, 4 px a frame (its square is 40 px), until the search
    on frame 15 (every 16 with one face followed) finds it 56 px from where it appeared. Followed
    back from its own motion it is written from frame 1; fitted back from where it was found, it
    would be lost after about 10 frames."""
    frames, truth = scene(32, {"red": (lambda i: 20, lambda i: True), "green": (lambda i: 250 - 4 * i, lambda i: i >= 1)})
    out = run(frames, batch=32, backend=BatchedBlobBackend())
    assert ids_of(out, truth) == {"red": {0}, "green": {1}}
    assert min(i for i, faces in out.items() if 1 in faces) == 1


def test_a_missing_face_is_found_again_where_it_was_last_seen_whatever_its_motion_says():
    """A face hidden by someone walking in front: its fit was dragged along before it was lost, so
    its motion points away, but it comes back where it stood; colours are left out (they would
    also tell)."""
    from auhm.face.following import Track

    tracker = MultiTracker(BlobBackend(), MultiTrackConfig(reid_distance=None))
    tracker.start("scene", 100)
    stood = np.array([140.0, 40.0, 180.0, 80.0])
    hidden = Track(1, inscribed_ring(stood), 1.0, frame=50, id=0, live=False, velocity=np.array([6.0, 0.0]))
    tracker._tracks = [hidden]
    frame = np.zeros((H, W, 3), np.uint8)
    assert iou(hidden.predicted_box(60), stood)[0, 0] == 0  # where its motion took it: nowhere near
    taken = tracker._associate(frame, 60, stood[None])
    assert taken == {0: hidden}


def test_a_face_gone_for_good_within_one_batch_keeps_its_rows():
    """Red is seen for 10 frames and leaves for longer than the gap a face is kept missing; all in
    one batch: its track is dropped before the batch ends, and its rows are still written."""
    frames, truth = scene(40, {"red": (lambda i: 30, lambda i: i < 10), "blue": (lambda i: 200, lambda i: i >= 25)})
    out = run(frames, batch=40, detect_every=4, max_gap=5 / 30)
    red_rows = [i for i, box in truth["red"].items() if any(iou(box, b)[0, 0] > 0.5 for b in out.get(i, {}).values())]
    assert red_rows == list(range(10))
    assert ids_of(out, truth) == {"red": {0}, "blue": {1}}


class AskedFrames(BatchedBlobBackend):
    """Keeps the frames each fit was asked for (their :func:`stamp`), one list a call."""

    def __init__(self):
        super().__init__()
        self.asked: list[list[int]] = []

    def fit(self, frames, regions):
        self.asked.append([stamp(f) for f in frames])
        return super().fit(frames, regions)


def test_several_faces_are_fitted_together_and_only_as_far_as_the_next_search():
    """Among several faces a fit is lost sooner, and what a batched fit made past the loss is thrown
    away: the faces a search finds, and two followed faces, are each fitted in one call (each frame asked once for each face), only as
    far as the next search (every 8 frames among several at 16), and give the faces that fitting
    them one frame at a time gives."""
    frames, truth = scene(64, {"red": (lambda i: 20 + i, lambda i: True), "green": (lambda i: 200 - i, lambda i: True)})
    frames = stamped(frames)
    backend = AskedFrames()
    out = run(frames, batch=32, backend=backend, detect_every=16)
    assert backend.asked[0] == [0, 0]  # the two faces found on frame 0: fitted from their boxes in one call
    following = [a for a in backend.asked if len(set(a)) > 1]
    assert len(following) == 8  # rows 1–7, then 8 frames up to each search: 64 frames, both faces in every call
    assert backend.detected == 9  # frames 0, 7, 15 … 63: what was fitted is used, no face is lost on the way
    for asked in following:
        m = len(asked) // 2
        assert asked[:m] == asked[m:] == list(range(asked[0], asked[0] + m))
        assert m <= 8 and asked[m - 1] % 8 == 7  # ends on a search
    plain = run(frames, batch=32, detect_every=16)
    assert sorted(out) == sorted(plain) == list(range(64))
    for i in out:
        assert sorted(out[i]) == sorted(plain[i]) == [0, 1]
        for face in out[i]:
            np.testing.assert_array_equal(out[i][face], plain[i][face])
    assert ids_of(out, truth) == {"red": {0}, "green": {1}}


class Spreading(BatchedBlobBackend):
    """Its fit from a face's landmarks spreads, wider by ``rate`` for each frame (:func:`stamp`)
    since the face was last fitted from a found box: a network's fit can spread over a face behind
    or beside it by steps too small to count as a jump. The faces are told apart by colour."""

    def __init__(self, rate: float):
        super().__init__()
        self.rate = rate
        self.anchor: dict[tuple, int] = {}

    def fit(self, frames, regions):
        out, conf = super().fit(frames, regions)
        from_box = np.asarray(regions).shape[1] == 2
        for k, frame in enumerate(frames):
            if not np.isfinite(out[k]).all():
                continue
            x0, y0 = out[k].min(0)
            face = tuple(frame[int(out[k][:, 1].mean()), int(out[k][:, 0].mean())])
            if from_box:
                self.anchor[face] = stamp(frame)
            else:
                out[k] = (x0, y0) + (out[k] - (x0, y0)) * (1 + self.rate) ** (stamp(frame) - self.anchor.get(face, stamp(frame)))
        return out, conf


def widest(out: dict) -> float:
    """The widest box written, over a square's side."""
    return max((b[2] - b[0]) / SIDE for faces in out.values() for b in faces.values())


def test_a_followed_fit_far_larger_than_its_find_is_fitted_again_from_the_find():
    """Two faces, searched every 8 frames; their fits spread 2 % a frame, too little to be lost within
    a run. At each search a fit is set against the face found there, and one a quarter wider is
    fitted again from the find: the spread never passes two runs'. (Colours are left out: here the
    spread takes in the grey around a face, which they would see; spread over a face behind, it
    takes in much the same colours.)"""
    frames, truth = scene(64, {"red": (lambda i: 20, lambda i: True), "green": (lambda i: 220, lambda i: True)})
    out = run(stamped(frames), batch=32, backend=Spreading(0.02), reid_distance=None)
    assert sorted(out) == list(range(64))
    assert ids_of(out, truth) == {"red": {0}, "green": {1}}
    assert widest(out) < 1.02 ** 16


def test_among_several_faces_a_fit_that_keeps_growing_is_lost_before_it_is_much_larger():
    """Two faces found on frame 0; their fits spread 5 % a frame. Among several faces, a batched fit
    that has grown by more than ``max_run_scale`` since it began is lost there and searched for at
    once, not left to grow to the next search (frame 7, 1.05⁶ as wide the frame before)."""
    frames, truth = scene(64, {"red": (lambda i: 20, lambda i: True), "green": (lambda i: 220, lambda i: True)})
    out = run(stamped(frames), batch=32, backend=Spreading(0.05))
    assert sorted(out) == list(range(64))
    assert ids_of(out, truth) == {"red": {0}, "green": {1}}
    assert widest({i: out[i] for i in range(7)}) <= MultiTrackConfig().max_run_scale
