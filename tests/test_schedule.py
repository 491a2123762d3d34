"""When the multi-face tracker searches: a grid of decoded frames, finer among several faces, at
once after a loss, and 1, 2, 4 … frames apart with no face in view."""

from __future__ import annotations

import pytest

from auhm.face.schedule import SearchSchedule, to_grid


def searches(schedule: SearchSchedule, frames: int, followed, missing=lambda o: 0, lost=()) -> list[int]:
    """The frames searched over ``frames`` decoded frames, with ``followed(o)`` faces followed after
    a search on frame o (``missing(o)`` missing) and a face lost on each frame of ``lost``."""
    out = []
    for o in range(frames):
        if o in lost and o < schedule.next:
            schedule.lost(o)
        if o >= schedule.next:
            out.append(o)
            schedule.searched(o, followed(o), missing(o))
    return out


def test_one_face_is_searched_on_the_last_frame_of_every_k():
    assert searches(SearchSchedule(16), 70, lambda o: 1) == [0, 15, 31, 47, 63]
    assert [to_grid(o, 16) for o in (0, 14, 15, 16, 31)] == [15, 1, 16, 15, 16]


def test_several_faces_or_a_missing_one_are_searched_twice_as_often():
    assert searches(SearchSchedule(16), 40, lambda o: 2) == [0, 7, 15, 23, 31, 39]
    assert searches(SearchSchedule(16), 40, lambda o: 1, missing=lambda o: 1) == [0, 7, 15, 23, 31, 39]
    assert searches(SearchSchedule(1), 4, lambda o: 2) == [0, 1, 2, 3]


def test_a_lost_face_is_searched_at_once_and_the_grid_taken_up_after():
    assert searches(SearchSchedule(16), 50, lambda o: 1, lost={20, 30}) == [0, 15, 20, 30, 31, 47]


def test_with_no_face_searches_come_1_2_4_frames_apart_never_past_the_grid():
    assert searches(SearchSchedule(16), 50, lambda o: 0) == [0, 1, 3, 7, 15, 31, 47]
    assert searches(SearchSchedule(8), 30, lambda o: 0) == [0, 1, 3, 7, 15, 23]
    found_at_10 = searches(SearchSchedule(16), 50, lambda o: int(o >= 10))
    assert found_at_10 == [0, 1, 3, 7, 15, 31, 47]


def test_a_grid_under_one_frame_is_refused():
    with pytest.raises(ValueError, match="at least 1"):
        SearchSchedule(0)
