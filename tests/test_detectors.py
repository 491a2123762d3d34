"""Full-frame face detectors (auhm.face.detectors): a face found on a real photo, none on a blank frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auhm.face.detectors import DETECTORS, available, find_detector, make_detector


@pytest.mark.parametrize("name", DETECTORS)
def test_detector_finds_the_face_of_a_photo_and_none_in_a_blank_frame(media, name):
    if not available(name):
        pytest.skip(f"{name} detector not installed")
    photo = cv2.cvtColor(cv2.imread(str(media / "single_face.jpg")), cv2.COLOR_BGR2RGB)
    detect = make_detector(name)
    found = detect(photo)
    assert len(found) >= 1
    box, score = max(found, key=lambda d: (d[0][2] - d[0][0]) * (d[0][3] - d[0][1]))
    h, w = photo.shape[:2]
    side = box[2] - box[0]
    assert 0.15 * w < side < 0.9 * w and 0 < score <= 1  # a face-sized box in frame pixels
    assert 0 <= box[0] < box[2] <= w + 1 and 0 <= box[1] < box[3] <= h + 1
    assert detect(np.full((360, 640, 3), 90, np.uint8)) == []


def test_find_detector_prefers_dlib_and_says_none_when_nothing_is_installed(monkeypatch):
    from auhm.face import detectors

    monkeypatch.setattr(detectors, "available", lambda name: name == "opencv")
    assert find_detector() == "opencv"
    monkeypatch.setattr(detectors, "available", lambda name: True)
    assert find_detector() == "dlib"
    monkeypatch.setattr(detectors, "available", lambda name: False)
    assert find_detector() is None
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("nope")
