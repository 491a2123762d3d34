"""Self-tracking (``--landmarks auto`` on a checkpoint whose backbone predicts landmarks).

A world of bright squares: the "face" is a bright square, the detector finds it, the fallback
landmark backend fits the ellipse inscribed in it, and the stand-in AU model's backbone puts its
landmarks on the ellipse inscribed in the bright part of its crop (so it follows the square, and
has no confident landmarks where there is none). Everything goes through ``annotate()``.
"""

from __future__ import annotations

import multiprocessing

import numpy as np
import pandas as pd
import pytest
import torch

from helpers import AUS, INFO, SQUARE, TRACK_SIZE, SquareAU, SquareBackend, annotate_config, inscribed_ring, square_clip


@pytest.fixture
def square_world(monkeypatch):
    """Faces are bright squares: detection, the fallback backend and the model all see them.
    Returns a counter of full-frame searches shared with forked tracking processes."""
    import auhm.landmarks
    from auhm.face import detectors
    from auhm.infer.annotate import Predictor

    searches = multiprocessing.Value("i", 0)

    class CountedSquares(SquareBackend):
        def detect(self, frames):
            with searches.get_lock():
                searches.value += 1
            return super().detect(frames)

    monkeypatch.setattr(auhm.landmarks, "make_backend", lambda name, **kw: CountedSquares())  # detector or fallback backend
    monkeypatch.setattr(detectors, "find_detector", lambda: "dlib")
    monkeypatch.setattr(detectors, "make_detector", lambda name, **options: (lambda frame, b=CountedSquares(): b.detect(frame[None])[0]))
    info = {**INFO, "method": "adaptation", "input_size": TRACK_SIZE}
    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, p, device="auto", precision="auto": cls(SquareAU(), info, "cpu", "fp32")))
    return searches


def auto_config(checkpoint, out, **kw):
    return annotate_config(checkpoint, out, landmarks="auto", **kw)


def test_auto_finds_a_face_that_appears_after_the_first_frames(tmp_path, checkpoint, square_world):
    """3 frames without a face, then 40 with: every face frame found, as dlib's tracker finds them."""
    boxes = square_clip(tmp_path / "late.avi", 43, lambda i: i >= 3)
    from auhm.infer.annotate import annotate

    annotate([str(tmp_path / "late.avi")], auto_config(checkpoint, tmp_path / "late.parquet"))
    df = pd.read_parquet(tmp_path / "late.parquet")
    assert df.success.tolist() == [b is not None for b in boxes]
    truth = np.array([b for b in boxes if b is not None], float)
    np.testing.assert_allclose(df.loc[df.success, ["x0", "y0", "x1", "y1"]].to_numpy(), truth, atol=2)


def test_auto_finds_the_face_again_after_it_left(tmp_path, checkpoint, square_world):
    """The face leaves for 10 frames and comes back: found again within 2 frames of its return,
    with searches on a schedule while it is away (not on every frame)."""
    square_clip(tmp_path / "away.avi", 60, lambda i: not 20 <= i < 30, x0=lambda i: 40 + (i % 7))
    from auhm.infer.annotate import annotate

    annotate([str(tmp_path / "away.avi")], auto_config(checkpoint, tmp_path / "away.parquet"))
    ok = pd.read_parquet(tmp_path / "away.parquet").success.to_numpy()
    assert ok[:20].all() and not ok[20:30].any()
    assert ok[32:].all()
    # frames 0 and 15 while the face is followed (new faces), 20, 21, 23, 27, 31 while it is away, 47: not one a frame
    assert square_world.value <= 60 // 8 + 5


def test_weak_landmarks_are_no_face_and_the_video_falls_back_once(tmp_path, checkpoint, square_world, monkeypatch):
    """A deliberately untrained landmark network (confidence ≈ 0.005, far below the presence
    threshold): its landmarks never make a face; the video goes on with the detector's own
    tracker, said once, and the model scores each frame about once (no search per frame)."""
    from auhm.infer.annotate import Predictor, annotate
    from auhm.models import build_model

    torch.manual_seed(0)
    untrained = build_model("adaptation", AUS, preset="small")
    info = {**INFO, "method": "adaptation", "input_size": untrained.input_size, "backbone_presence_threshold": 0.3}
    scored = []

    class Counted(Predictor):
        def __call__(self, crops, keep_heatmaps=False):
            scored.append(len(crops))
            return super().__call__(crops, keep_heatmaps)

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, p, device="auto", precision="auto": Counted(untrained, info, "cpu", "fp32")))
    n = 96
    boxes = square_clip(tmp_path / "weak.avi", n, lambda i: True, x0=lambda i: 20 + i, size=(192, 128))
    res = annotate([str(tmp_path / "weak.avi")], auto_config(checkpoint, tmp_path / "weak.parquet"))
    df = pd.read_parquet(tmp_path / "weak.parquet")
    assert not res.failures, res.failures
    assert not (df.success & (df.confidence < 0.3)).any()  # a weak landmark fit is not a face
    assert df.success.all()  # the fallback tracker found the square on every frame
    np.testing.assert_allclose(df[["x0", "y0", "x1", "y1"]].to_numpy(), np.array(boxes, float), atol=2)
    assert [note.path for note in res.fallbacks] == [str(tmp_path / "weak.avi")]
    assert "tracking this video with" in res.fallbacks[0].reason
    # The cost of finding out is a few chunks (batch 8), whatever the video's length: not a search and a re-cut a frame.
    assert sum(scored) <= n + 4 * 8
    assert square_world.value <= 3 * 8  # searches: the first chunks only (one a frame would be 96)


def test_self_tracking_matches_crops_cut_from_the_true_face(tmp_path, checkpoint, square_world):
    """A moving face, batches of 4 cut ahead: the success pattern of the truth, boxes within 2 px,
    and each intensity as close to the model's answer on the crop cut from the true landmarks as
    a crop off by the re-cut tolerance (``refine_drift``: 10 % of its side, in place or size) allows."""
    from auhm.face.crop import CropConfig, crop_face
    from auhm.infer.annotate import annotate
    from auhm.video import VideoReader

    boxes = square_clip(tmp_path / "move.avi", 40, lambda i: i < 34, x0=lambda i: 10 + 3 * i)
    cfg = auto_config(checkpoint, tmp_path / "move.parquet")
    cfg.batch_size = 4
    annotate([str(tmp_path / "move.avi")], cfg)
    df = pd.read_parquet(tmp_path / "move.parquet")
    assert df.success.tolist() == [b is not None for b in boxes]
    np.testing.assert_allclose(df.loc[df.success, ["x0", "y0", "x1", "y1"]].to_numpy(), np.array(boxes[:34], float), atol=2)
    crop = CropConfig(TRACK_SIZE, 1.3, -0.08)
    model = SquareAU()
    frames = [f for _, _, f in VideoReader(tmp_path / "move.avi").frames()]

    def answer(frame, points):
        c, _ = crop_face(frame, points, crop)
        return model(torch.from_numpy(c[None]).permute(0, 3, 1, 2).float() / 255)["heatmaps"][0, :, 0, 0].numpy()

    d = cfg.refine_drift * SQUARE * crop.scale
    for i in np.flatnonzero(df.success.to_numpy()):
        ring = inscribed_ring(np.array(boxes[i], float))
        centre = ring.mean(0)
        want = answer(frames[i], ring)
        off = [ring + s for s in ([d, 0], [-d, 0], [0, d], [0, -d])] + [centre + (ring - centre) * f for f in (0.9, 1.1)]
        tolerance = max(np.abs(answer(frames[i], o) - want).max() for o in off)
        got = df.loc[i, ["AU01", "AU02", "AU12"]].to_numpy(float)
        assert np.abs(got - want).max() <= tolerance + 0.02, (i, got, want, tolerance)


def test_auto_tells_a_detector_that_can_leave_out_followed_faces_where_they_are(tmp_path, checkpoint, square_world, monkeypatch):
    """A detector with ``leaves_out`` (MTCNN) gets the followed face's box at each scheduled search and
    may skip it; the rows are those of a detector that finds everything."""
    from auhm.face import detectors
    from auhm.face.boxes import box_iou
    from auhm.infer.annotate import annotate

    told = []

    class LeavingOut:
        leaves_out = True

        def __call__(self, frame, leave_out=None):
            told.append(np.zeros((0, 4)) if leave_out is None else np.asarray(leave_out, np.float64))
            found = SquareBackend().detect(frame[None])[0]
            return [(b, s) for b, s in found if not len(told[-1]) or box_iou(b, told[-1]).max() < 0.3]

    boxes = square_clip(tmp_path / "sq.avi", 40, lambda i: True)
    annotate([str(tmp_path / "sq.avi")], auto_config(checkpoint, tmp_path / "all.parquet", workers=1))
    monkeypatch.setattr(detectors, "make_detector", lambda name, **options: LeavingOut())
    annotate([str(tmp_path / "sq.avi")], auto_config(checkpoint, tmp_path / "left_out.parquet", workers=1))
    everything, left_out = pd.read_parquet(tmp_path / "all.parquet"), pd.read_parquet(tmp_path / "left_out.parquet")
    pd.testing.assert_frame_equal(everything, left_out, check_exact=True)
    assert left_out.success.all() and len(told) >= 4  # the first search, two on the grid (the last of every 16 frames), one after a lost fit
    # From the second search on the square is followed (a search right after a lost fit is told nothing).
    assert len(told[0]) == 0 and sum(len(t) == 1 for t in told[1:]) >= len(told) - 2
    for t in told[1:]:
        assert all(any(box_iou(box, np.asarray(b, float))[0, 0] > 0.5 for b in boxes) for box in t)
