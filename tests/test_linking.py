"""Joining a video's tracks into people at its end: one person's tracks apart in time join, tracks
that share a frame, look otherwise, could not have walked there, or could be someone else do not."""

from __future__ import annotations

import numpy as np

from auhm.face.linking import JoinConfig, People, TrackRecord, join_tracks
from auhm.face.looks import look_distance

FPS = 30.0


def look(hue: int, spread: float = 0.0) -> np.ndarray:
    """A colour histogram (16 × 8 bins) mostly in one hue bin, ``spread`` of it in the next."""
    hist = np.zeros((16, 8), np.float32)
    hist[hue, 4] = 1.0 - spread
    hist[(hue + 1) % 16, 4] = spread
    return hist.ravel()


def record(face: int, frames: range, x0: float, x1: float, colours: np.ndarray, looks: int = 3) -> TrackRecord:
    """A 40-px face moving from x0 to x1 over ``frames``, with ``looks`` clean looks of ``colours``."""
    r = TrackRecord(face)
    xs = np.linspace(x0, x1, len(frames))
    r.add_frames(np.array(frames), np.stack([[x, 40, x + 40, 80] for x in xs]))
    for _ in range(looks):
        r.add_look(colours)
    return r


def test_one_persons_tracks_apart_in_time_join_and_ids_are_renumbered():
    tracks = [record(0, range(0, 30), 100, 120, look(3)),
              record(1, range(0, 90), 250, 250, look(9)),
              record(2, range(60, 90), 125, 140, look(3, 0.05))]  # 0, back after a second where it left
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1, 2: 0}
    tracks.append(record(3, range(95, 120), 140, 150, look(12)))
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1, 2: 0, 3: 2}  # dense ids, in order of the people's first ids


def test_tracks_in_view_at_once_are_two_people_however_alike_and_near():
    tracks = [record(0, range(0, 30), 100, 120, look(3)), record(1, range(29, 60), 120, 120, look(3))]
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1}
    tracks = [record(0, range(0, 29), 100, 120, look(3)), record(1, range(29, 60), 120, 120, look(3))]
    assert join_tracks(tracks, FPS) == {0: 0, 1: 0}  # one frame apart: one person


def test_colours_farther_than_the_distance_are_two_people():
    a, b = look(3), look(3, 0.45)
    assert look_distance(a, b) > JoinConfig().distance
    tracks = [record(0, range(0, 30), 100, 120, a), record(1, range(40, 60), 120, 130, b)]
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1}
    assert join_tracks(tracks, FPS, JoinConfig(distance=look_distance(a, b) + 0.01)) == {0: 0, 1: 0}


def test_a_face_farther_than_a_person_walks_in_the_gap_is_someone_else_until_the_gap_is_long():
    near_in_time = [record(0, range(0, 30), 0, 0, look(3)), record(1, range(40, 60), 280, 280, look(3))]
    assert join_tracks(near_in_time, FPS) == {0: 0, 1: 1}  # 7 face widths in a third of a second
    later = [record(0, range(0, 30), 0, 0, look(3)), record(1, range(200, 220), 280, 280, look(3))]
    assert join_tracks(later, FPS) == {0: 0, 1: 0}  # … in almost 6 s: back from where it went


def test_a_track_as_like_two_others_joins_neither():
    tracks = [record(0, range(0, 30), 100, 100, look(3)), record(1, range(0, 30), 200, 200, look(3, 0.02)),
              record(2, range(60, 90), 150, 150, look(3, 0.01))]
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1, 2: 2}


def test_a_track_with_too_few_clean_looks_is_left_alone():
    tracks = [record(0, range(0, 30), 100, 120, look(3)), record(1, range(40, 60), 120, 130, look(3), looks=1)]
    assert join_tracks(tracks, FPS) == {0: 0, 1: 1}
    assert join_tracks(tracks, FPS, JoinConfig(least_looks=1)) == {0: 0, 1: 0}


def test_three_tracks_of_one_person_join_in_a_chain_of_reachable_steps():
    tracks = [record(0, range(0, 20), 100, 100, look(3)), record(1, range(50, 70), 110, 110, look(3, 0.03)),
              record(2, range(100, 120), 120, 120, look(3, 0.06)), record(3, range(0, 120), 250, 250, look(10))]
    assert join_tracks(tracks, FPS, JoinConfig(margin=0.0)) == {0: 0, 1: 0, 2: 0, 3: 1}


def test_rows_handed_on_take_their_new_ids_person_and_a_tracks_span_follows():
    people = People({0: 0, 1: 1, 2: 0}, {1: {40: 2, 41: 2}})
    assert [people.of(1, f) for f in (39, 40, 41, 42)] == [1, 0, 0, 1]
    assert people.of(2, 40) == 0 and people.of(7, 3) == 7  # an id it does not know stays itself
    assert People({0: 0, 1: 1}, {1: {5: 0}}).renames and not People({0: 0, 1: 1}).renames and People({0: 0, 1: 0}).renames
    r = TrackRecord(4)
    r.add_frames(np.array([50, 51]), np.array([[50, 0, 90, 40], [51, 0, 91, 40]]))
    r.add_frames(np.array([40, 41]), np.array([[40, 0, 80, 40], [41, 0, 81, 40]]))  # handed to it after its first frames
    assert (r.first, r.last, r.first_box[0], r.last_box[0]) == (40, 51, 40, 51)
    r.cut_after(50, np.array([50, 0, 90, 40]))  # its last frame handed away
    assert (r.last, r.last_box[0]) == (50, 50)
    r.cut_after(60, np.array([0, 0, 1, 1]))  # past its end: nothing to cut
    assert r.last == 50
