"""auhm.metrics.tracking: tracking scores of hand-made tracks, computed by py-motmetrics and TrackEval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from auhm.face.boxes import box_iou, match_boxes
from auhm.metrics.tracking import track_scores

pytest.importorskip("motmetrics")
pytest.importorskip("trackeval")

FRAMES = 10
BOXES = {0: (10, 10, 60, 60), 1: (200, 10, 250, 60)}  # two faces far apart, still


def _rows(video: str, ids: dict[int, list[int]], visible=None) -> pd.DataFrame:
    """One row per (frame, face): ``ids[true face][frame]`` is the id the row carries (-1: no row)."""
    rows = []
    for true, per_frame in ids.items():
        for frame, face in enumerate(per_frame):
            if face >= 0:
                x0, y0, x1, y1 = BOXES[true]
                rows.append({"video": video, "frame": frame, "face": face, "success": True, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                             "visible": 1.0 if visible is None else visible[true][frame]})
    return pd.DataFrame(rows)


TRUTH = _rows("crowd000.mp4", {0: [0] * FRAMES, 1: [1] * FRAMES})


def test_a_perfect_tracker_scores_one_and_switches_nothing():
    pred = _rows("videos/crowd000.mp4", {0: [7] * FRAMES, 1: [8] * FRAMES}).drop(columns="visible")
    s = track_scores(pred, TRUTH)["overall"]
    assert s["idf1"] == pytest.approx(1.0) and s["mota"] == pytest.approx(1.0) and s["hota"] == pytest.approx(1.0)
    assert s["id_switches"] == 0 and s["switches_per_1000"] == 0 and s["face_frames"] == 20 and s["tracks"] == 2


def test_a_tracker_that_changes_one_id_once_has_one_switch():
    # face 0 is followed as 7 for five frames, then as 9; face 1 as 8 throughout
    pred = _rows("crowd000.mp4", {0: [7] * 5 + [9] * 5, 1: [8] * FRAMES})
    s = track_scores(pred, TRUTH)["overall"]
    assert s["id_switches"] == 1 and s["switches_per_1000"] == pytest.approx(1000 / 20)
    # IDF1 = 2 IDTP / (2 IDTP + IDFP + IDFN): the best one-to-one ids (0↔7 or 0↔9, 1↔8) cover 15 of 20 rows
    assert s["idf1"] == pytest.approx(2 * 15 / (2 * 15 + 5 + 5))
    assert s["mota"] == pytest.approx(1 - 1 / 20)
    # HOTA with exact boxes: DetA 1; AssA = mean over the 20 matches of their id's Jaccard (10 × 1, 10 × 5/10)
    assert s["deta"] == pytest.approx(1.0) and s["assa"] == pytest.approx(0.75) and s["hota"] == pytest.approx(np.sqrt(0.75))


def test_hidden_faces_are_neither_required_nor_counted_against_the_tracker():
    hidden = {0: [1.0] * FRAMES, 1: [1.0] * 5 + [0.1] * 5}  # face 1 mostly hidden in the last five frames
    truth = _rows("crowd000.mp4", {0: [0] * FRAMES, 1: [1] * FRAMES}, hidden)
    found_anyway = _rows("crowd000.mp4", {0: [7] * FRAMES, 1: [8] * FRAMES})
    lost_there = _rows("crowd000.mp4", {0: [7] * FRAMES, 1: [8] * 5 + [-1] * 5})
    for pred in (found_anyway, lost_there):
        s = track_scores(pred, truth)["overall"]
        assert s["face_frames"] == 15 and s["false_positives"] == 0 and s["misses"] == 0 and s["idf1"] == pytest.approx(1.0)


def test_rows_without_a_face_and_videos_without_predictions():
    pred = _rows("crowd000.mp4", {0: [7] * FRAMES, 1: [8] * FRAMES})
    pred.loc[pred["frame"] == 3, "success"] = False  # a frame whose faces were not found
    no_face = pd.DataFrame([{"video": "crowd000.mp4", "frame": 11, "face": None, "success": False, "x0": np.nan, "y0": np.nan,
                             "x1": np.nan, "y1": np.nan}])
    truth = pd.concat([TRUTH, TRUTH.assign(video="crowd001.mp4")], ignore_index=True)
    scores = track_scores(pd.concat([pred, no_face], ignore_index=True), truth)
    assert scores["videos"]["crowd000.mp4"]["misses"] == 2 and scores["videos"]["crowd001.mp4"]["misses"] == 20
    assert scores["overall"]["face_frames"] == 40 and scores["overall"]["recall"] == pytest.approx(18 / 40)


def test_box_iou_and_matching():
    a = np.array([[0, 0, 10, 10], [100, 100, 110, 110]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10]])
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 1.0], [0, 0]])
    assert match_boxes(a, b) == [(0, 1)] and match_boxes(a, b[:0]) == []


def test_truth_faces_names_the_true_face_under_each_row_whatever_the_tracker_called_it():
    from auhm.metrics.tracking import truth_faces

    pred = _rows("videos/crowd000.mp4", {0: [7] * 5 + [8] * 5, 1: [8] * 5 + [7] * 5})  # ids swapped half-way
    pred.loc[len(pred)] = {"video": "videos/crowd000.mp4", "frame": 2, "face": 9, "success": True, "x0": 400, "y0": 0,
                           "x1": 450, "y1": 50, "visible": 1.0}  # on no true face
    named = truth_faces(pred, TRUTH)
    expected = [0] * 10 + [1] * 10 + [np.nan]
    np.testing.assert_array_equal(named.to_numpy(), expected)
