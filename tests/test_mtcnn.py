"""MTCNN (auhm.face.mtcnn): its overlap suppression against OpenCV's, and the faces of a rendered
crowd found with facenet-pytorch's weights."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auhm.face.detectors import available, make_detector
from auhm.face.mtcnn import nms, squared

from helpers import crowd_view, faces_found


def test_suppression_keeps_what_opencvs_keeps():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 200, (300, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(10, 80, (300, 2))], axis=1)
    scores = (rng.permutation(300) + 1) / 301.0  # no ties: the order is the scores'
    rects = [[float(x0), float(y0), float(x1 - x0), float(y1 - y0)] for x0, y0, x1, y1 in boxes]
    for limit in (0.3, 0.5, 0.7):
        reference = np.asarray(cv2.dnn.NMSBoxes(rects, scores.tolist(), 0.0, limit)).ravel()
        assert sorted(nms(boxes, scores, limit).tolist()) == sorted(reference.tolist())


def test_suppression_by_the_smaller_box_drops_a_box_inside_another():
    boxes = np.array([[0, 0, 100, 100], [10, 10, 50, 50], [200, 200, 240, 240]], np.float64)
    scores = np.array([0.9, 0.8, 0.7])
    assert nms(boxes, scores, 0.7).tolist() == [0, 1, 2]  # IoU 0.16: kept
    assert nms(boxes, scores, 0.7, by_smaller=True).tolist() == [0, 2]  # wholly inside the first: dropped
    np.testing.assert_allclose(squared(np.array([[0.0, 0.0, 40.0, 20.0]])), [[0.0, -10.0, 40.0, 30.0]])


def test_mtcnn_finds_every_face_of_a_rendered_crowd_and_none_in_a_blank_frame(tmp_path):
    if not available("mtcnn"):
        pytest.skip("facenet-pytorch's weights are not installed (pip install --no-deps facenet-pytorch==2.6.0)")
    view = crowd_view(tmp_path)
    detect, wanted, found = make_detector("mtcnn"), 0, 0
    for t in (0, 39):
        rgb, truth = view(t)
        detections = detect(rgb)
        wanted += len(truth)
        found += faces_found(detections, truth)
        assert all(0.7 < score <= 1 for _, score in detections)
    assert wanted >= 2 and found == wanted
    assert detect(np.full((360, 640, 3), 90, np.uint8)) == []


def test_mtcnn_leaves_out_the_faces_it_is_told_are_followed(tmp_path):
    from auhm.face.boxes import match_boxes

    if not available("mtcnn"):
        pytest.skip("facenet-pytorch's weights are not installed")
    view = crowd_view(tmp_path)
    rgb, truth = next((rgb, truth) for rgb, truth in map(view, range(40)) if len(truth) >= 2)  # two faces in full view
    truth = truth[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
    detect = make_detector("mtcnn")
    boxes = lambda found: np.array([b for b, _ in found]).reshape(-1, 4)  # noqa: E731
    assert len(match_boxes(truth, boxes(detect(rgb)))) == len(truth)
    rest = boxes(detect(rgb, leave_out=truth[:1]))  # the first face followed: only the others are looked for
    assert [r for r, _ in match_boxes(truth, rest)] == list(range(1, len(truth)))


def test_a_box_convention_moves_and_scales_a_box_about_its_centre():
    from auhm.face.detectors import BoxConvention

    box = np.array([0.0, 0.0, 100.0, 200.0])  # centre (50, 100)
    np.testing.assert_allclose(BoxConvention()(box), box)
    # centre 0.1 × 200 lower: (50, 120); height 0.5 × 200 = 100, width 2 × 100 = 200
    np.testing.assert_allclose(BoxConvention(shift_y=0.1, height=0.5, width=2.0)(box), [-50.0, 70.0, 150.0, 170.0])


@pytest.mark.parametrize("name", ["mtcnn", "opencv"])
def test_a_detectors_boxes_are_drawn_as_hogs(tmp_path, name):
    """The boxes a detector answers with lie on HOG's box of the same face closer than its own do,
    so that a fit seeded from either starts from about the same crop."""
    from auhm.face.boxes import box_iou, match_boxes
    from auhm.face.detectors import REGISTRY, BoxConvention

    if not (available(name) and available("dlib")):
        pytest.skip(f"{name} or dlib is not installed")
    view = crowd_view(tmp_path)
    cls, hog = REGISTRY.get(name, ValueError), make_detector("dlib")
    own, drawn = cls(convention=BoxConvention()), cls()
    gains = []
    for t in (0, 20, 39):
        rgb, _ = view(t)
        hog_boxes = np.array([b for b, _ in hog(rgb)]).reshape(-1, 4)
        own_boxes = np.array([b for b, _ in own(rgb)]).reshape(-1, 4)
        drawn_boxes = np.array([b for b, _ in drawn(rgb)]).reshape(-1, 4)
        for r, c in match_boxes(hog_boxes, own_boxes, 0.3):
            gains.append((box_iou(hog_boxes[r:r + 1], own_boxes[c:c + 1])[0, 0], box_iou(hog_boxes[r:r + 1], drawn_boxes[c:c + 1])[0, 0]))
    assert len(gains) >= 2
    before, after = np.median(np.array(gains), axis=0)
    assert after > before + 0.05 and after > 0.75
