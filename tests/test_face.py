"""Landmark backends, tracking and the landmarks job's pieces, on small generated data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from auhm.errors import UsageError
from auhm.face import FaceTrack, LandmarkBackend, Tracker, TrackerConfig
from auhm.face.base import BackendUnavailable, landmark_boxes
from auhm.face.crop import CropConfig
from auhm.landmarks import make_backend
from auhm.video import FrameBatch, VideoWriter

H, W = 96, 128


def ring(cx: float, cy: float, r: float) -> np.ndarray:
    """68 points on a circle: a stand-in face shape whose box is the disk's box."""
    a = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    return np.stack([cx + r * np.cos(a), cy + r * np.sin(a)], axis=-1).astype(np.float32)


def disk_frame(cx: float | None, cy: float = 48, r: float = 20) -> np.ndarray:
    """A dark frame with a white disk (the "face"), or none when cx is None."""
    frame = np.full((H, W, 3), 20, np.uint8)
    if cx is not None:
        yy, xx = np.mgrid[:H, :W]
        frame[(xx - cx) ** 2 + (yy - cy) ** 2 <= r * r] = 235
    return frame


def disk_of(frame: np.ndarray) -> tuple[float, float, float] | None:
    """Centre and radius of the white disk: the independent reference the fakes and tests use."""
    mask = frame[..., 0] > 128
    if mask.sum() < 20:
        return None
    yy, xx = np.nonzero(mask)
    return xx.mean(), yy.mean(), np.sqrt(mask.sum() / np.pi)


class DiskBackend(LandmarkBackend):
    """Finds the disk exactly; confidence 0 when the region holds no disk. Counts its calls."""

    name = "disk"

    def __init__(self, confidence: float = 0.9):
        self.detect_calls = 0
        self.fit_calls: list[int] = []  # frames per fit call
        self.confidence = confidence

    def detect(self, frames):
        self.detect_calls += len(frames)
        out = []
        for f in frames:
            d = disk_of(f)
            out.append([] if d is None else [(np.array([d[0] - d[2], d[1] - d[2], d[0] + d[2], d[1] + d[2]]), 0.9)])
        return out

    def fit(self, frames, regions):
        self.fit_calls.append(len(frames))
        lm = np.zeros((len(frames), 68, 2), np.float32)
        conf = np.zeros(len(frames), np.float32)
        for i, f in enumerate(frames):
            d = disk_of(f)
            if d is None:  # what a fitter returns on a blank region: some points, no confidence
                lm[i] = ring(W / 2, H / 2, 10)
            else:
                lm[i], conf[i] = ring(*d), self.confidence
        return lm, conf


class UncheckedDiskBackend(DiskBackend):
    """A disk finder whose presence check is costly: unchecked fits follow the region blindly."""

    def __init__(self, verify_every: int):
        super().__init__()
        self.verify_every = verify_every
        self.unchecked_calls = 0

    def fit_unchecked(self, frames, regions):
        self.unchecked_calls += len(frames)
        out = np.array(regions, np.float32)  # a blank region: the fitter stays where it was put
        for i, f in enumerate(frames):
            d = disk_of(f)
            if d is not None:
                out[i] = ring(*d)
        return out


def batch(frames: list[np.ndarray], first: int = 0) -> FrameBatch:
    idx = np.arange(first, first + len(frames))
    return FrameBatch(idx, idx / 10.0, np.stack(frames))


# ── tracker ─────────────────────────────────────────────────────────────────────────────────
def test_tracker_detects_once_then_follows_a_moving_face():
    backend = DiskBackend()
    tracker = Tracker(backend)
    tracker.start("a.mp4")
    xs = [40 + 2 * t for t in range(12)]
    track = tracker.update(batch([disk_frame(x) for x in xs[:6]]))
    track2 = tracker.update(batch([disk_frame(x) for x in xs[6:]], first=6))
    assert backend.detect_calls == 1 and tracker.detections == 1
    assert track.success.all() and track2.success.all()
    centres = np.concatenate([track.landmarks, track2.landmarks]).mean(axis=1)
    np.testing.assert_allclose(centres[:, 0], xs, atol=0.5)
    box = track.boxes[0]
    np.testing.assert_allclose(box, [40 - 20, 48 - 20, 40 + 20, 48 + 20], atol=1.5)
    np.testing.assert_allclose(track.timestamps, np.arange(6) / 10.0)


class CrowdBackend(DiskBackend):
    """The disk, plus ``extra`` smaller faces the detector also reports on every frame."""

    def __init__(self, extra: int):
        super().__init__()
        self.extra = extra

    def detect(self, frames):
        out = super().detect(frames)
        return [d + [(np.array([2.0, 2.0, 12.0, 12.0]), 0.9)] * self.extra if d else d for d in out]


def test_tracker_counts_the_faces_it_saw_and_follows_the_largest():
    tracker = Tracker(CrowdBackend(extra=3))
    tracker.start("crowd.mp4")
    track = tracker.update(batch([disk_frame(50)] * 3))
    assert tracker.faces_seen == 4 and track.success.all()
    np.testing.assert_allclose(track.boxes[0], [30, 28, 70, 68], atol=1.5)  # the disk, not a small one
    tracker.start("next.mp4")
    assert tracker.faces_seen == 0  # counted per video
    tracker.backend.extra = 0
    tracker.update(batch([disk_frame(50)] * 2))
    assert tracker.faces_seen == 1


def test_tracker_reports_no_face_as_nan_not_a_copy_and_redetects():
    backend = DiskBackend()
    tracker = Tracker(backend)
    tracker.start("b.mp4")
    frames = [disk_frame(50)] * 3 + [disk_frame(None)] * 3 + [disk_frame(80)] * 2
    track = tracker.update(batch(frames))
    np.testing.assert_array_equal(track.success, [1, 1, 1, 0, 0, 0, 1, 1])
    lost = ~track.success
    assert np.isnan(track.landmarks[lost]).all() and np.isnan(track.boxes[lost]).all()
    assert (track.confidence[lost] == 0).all()
    # first frame, then each face-less frame (fit failed there, so detect ran), then the return
    assert backend.detect_calls == 1 + 3 + 1
    np.testing.assert_allclose(track.landmarks[6].mean(axis=0), [80, 48], atol=0.5)


def test_tracker_start_forgets_the_previous_video():
    backend = DiskBackend()
    tracker = Tracker(backend)
    for name in ("a.mp4", "b.mp4"):
        tracker.start(name)
        tracker.update(batch([disk_frame(60)] * 3))
    assert backend.detect_calls == 2


def test_tracker_low_confidence_and_size_jumps_count_as_lost():
    low = DiskBackend(confidence=0.1)
    track = Tracker(low, TrackerConfig(min_confidence=0.3)).update(batch([disk_frame(60)] * 3))
    assert not track.success.any() and low.detect_calls == 3

    backend = DiskBackend()
    tracker = Tracker(backend, TrackerConfig(max_scale_change=1.5))
    frames = [disk_frame(60, r=12), disk_frame(60, r=30)]
    track = tracker.update(batch(frames))
    # the size jump fails the tracked fit, so frame 1 is detected afresh and found
    assert track.success.all() and backend.detect_calls == 2


def test_tracker_redetect_every():
    backend = DiskBackend()
    Tracker(backend, TrackerConfig(redetect_every=3)).update(batch([disk_frame(60)] * 10))
    assert backend.detect_calls == 3  # frames 0, 4, 8


def test_unchecked_fits_between_checks_give_the_same_track_as_checking_every_frame():
    # the face moves, leaves between two checks, comes back; batches of 6 and 7 frames
    xs = [40, 42, 44, 46, 48, None, None, None, 60, 62, 64, 66, 68]
    frames = [disk_frame(x) for x in xs]
    tracks = {}
    for every in (1, 3):
        backend = UncheckedDiskBackend(every)
        tracker = Tracker(backend)
        tracker.start("v.mp4")
        parts = [tracker.update(batch(frames[:6])), tracker.update(batch(frames[6:], first=6))]
        tracks[every] = (np.concatenate([t.success for t in parts]), np.concatenate([t.landmarks for t in parts]), backend)
    (s1, l1, b1), (s3, l3, b3) = tracks[1], tracks[3]
    np.testing.assert_array_equal(s1, [x is not None for x in xs])
    np.testing.assert_array_equal(s3, s1)  # the frame the face left is found exactly
    np.testing.assert_array_equal(l3, l1)
    assert np.isnan(l3[~s3]).all()
    # checked every frame: 0 detect+fit, 1-4 fit, 5 fit fails, 5-7 detect nothing, 8 detect+fit, 9-12 fit
    assert (len(b1.fit_calls), b1.unchecked_calls) == (11, 0)
    # every 3rd: 0 detect+fit, 1-2 unchecked, 3 checked, 4 unchecked, 5 (a batch's last) checked: fails,
    # so 4 and 5 are checked again one by one; 8 detect+fit, 9-10 unchecked, 11 and 12 checked
    assert (len(b3.fit_calls), b3.unchecked_calls) == (8, 5)
    assert b3.detect_calls == b1.detect_calls == 5


def test_batched_tracking_fits_a_batch_at_once_and_goes_sequential_after_a_loss():
    frames = [disk_frame(40 + 2 * t) for t in range(4)] + [disk_frame(40 + 2 * t) for t in range(4, 8)]
    frames[5] = disk_frame(None)
    results = {}
    for batched in (False, True):
        backend = DiskBackend()
        tracker = Tracker(backend, TrackerConfig(batched=batched))
        first = tracker.update(batch(frames[:4]))
        second = tracker.update(batch(frames[4:], first=4))
        results[batched] = (first, second, backend)
    seq, bat = results[False], results[True]
    for a, b in zip(seq[:2], bat[:2]):
        np.testing.assert_array_equal(a.success, b.success)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
    np.testing.assert_array_equal(bat[1].success, [1, 0, 1, 1])
    # sequential: frame 0 detect + fit, 1-4 fit, 5 fit fails + detect finds nothing, 6 detect + fit, 7 fit
    assert seq[2].fit_calls == [1] * 8
    # batched: frame 0 detect + fit, 1-3 in one call; then 4-7 in one call, frame 5 fails, and from
    # there one by one as above
    assert bat[2].fit_calls == [1, 3, 4, 1, 1, 1]
    assert bat[2].detect_calls == seq[2].detect_calls == 3


def test_facetrack_empty_and_landmark_boxes():
    t = FaceTrack.empty(np.arange(3), np.zeros(3))
    assert len(t) == 3 and t.landmarks.shape == (3, 68, 2) and np.isnan(t.boxes).all()
    np.testing.assert_allclose(landmark_boxes(ring(10, 20, 5)), [5, 15, 15, 25], atol=0.01)


def test_make_backend_rejects_unknown_and_network_without_model():
    with pytest.raises(UsageError, match="unknown landmark backend 'openface'; choose one of dlib, fan, network, truth"):
        make_backend("openface")
    for name in ("network", "auhm"):  # auhm: the network backend's earlier name
        with pytest.raises(UsageError, match=f"--landmarks {name} needs --landmark-model CKPT"):
            make_backend(name)


# ── truth ───────────────────────────────────────────────────────────────────────────────────
def sidecar_frame(points: np.ndarray, frames: np.ndarray) -> pd.DataFrame:
    columns = {"frame": frames}
    columns |= {f"x_{k}": points[:, k, 0] for k in range(68)}
    columns |= {f"y_{k}": points[:, k, 1] for k in range(68)}
    return pd.DataFrame(columns)


def test_truth_backend_round_trip_with_default_sidecar_location(tmp_path):
    from auhm.landmarks.job import LandmarksConfig, extract_landmarks

    video = tmp_path / "Videos" / "clip1.avi"
    with VideoWriter(video, 10, W, H) as w:
        for _ in range(7):
            w.write(disk_frame(60))
    rng = np.random.default_rng(0)
    points = rng.uniform(0, 90, (7, 68, 2)).astype(np.float32)
    keep = np.array([0, 1, 2, 4, 5, 6])  # frame 3 is missing from the sidecar
    (tmp_path / "auhm_truth").mkdir()
    sidecar_frame(points[keep], keep).to_parquet(tmp_path / "auhm_truth" / "clip1.parquet")

    result = extract_landmarks([str(video)], tmp_path / "lm.parquet", LandmarksConfig(backend="truth", quiet=True))
    assert not result.failures and result.frames == 7 and result.faces == 6
    out = pd.read_parquet(tmp_path / "lm.parquet")
    assert list(out["frame"]) == list(range(7))
    np.testing.assert_array_equal(out["success"], [1, 1, 1, 0, 1, 1, 1])
    xy = np.stack([out[[f"x_{k}" for k in range(68)]].to_numpy(), out[[f"y_{k}" for k in range(68)]].to_numpy()], -1)
    np.testing.assert_allclose(xy[keep], points[keep])
    assert np.isnan(xy[3]).all()
    np.testing.assert_allclose(out.loc[0, ["x0", "y0", "x1", "y1"]].to_numpy(float), landmark_boxes(points[0]), rtol=1e-6)

    # the job's output is itself a truth source (rows of other videos ignored)
    again = extract_landmarks([str(video)], tmp_path / "lm2.parquet", LandmarksConfig(backend="truth", truth=tmp_path / "lm.parquet", quiet=True))
    assert again.faces == 6
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "lm2.parquet"), out)


def test_truth_backend_reads_openface_csv_frames_from_one(tmp_path):
    from auhm.face.truth_backend import TruthBackend

    points = np.random.default_rng(1).uniform(0, 90, (3, 68, 2)).astype(np.float32)
    df = sidecar_frame(points, np.array([1, 2, 3]))
    df.insert(1, "success", [1, 0, 1])
    df.to_csv(tmp_path / "clip.csv", index=False)
    backend = TruthBackend(tmp_path)
    backend.start(str(tmp_path / "elsewhere" / "clip.mp4"))
    track = backend.read(np.arange(4), np.zeros(4))
    np.testing.assert_array_equal(track.success, [1, 0, 1, 0])
    np.testing.assert_allclose(track.landmarks[2], points[2], rtol=1e-6)
    with pytest.raises(FileNotFoundError, match="nope"):
        TruthBackend(tmp_path).start("nope.mp4")


# ── inputs ──────────────────────────────────────────────────────────────────────────────────
def test_expand_inputs_globs_lists_and_missing(tmp_path, monkeypatch):
    from auhm.video.inputs import expand_inputs

    for name in ("b.mp4", "a.mp4", "c.avi"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("# comment\nc.avi\n\na.mp4\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "blank.txt").write_text("# nothing\n")
    unmatched = []
    got = expand_inputs(["*.mp4", "@list.txt", "none*.mp4", "gone.mp4", "empty", "@blank.txt"], unmatched)
    # list entries are relative to the list's folder; a.mp4 is listed twice, kept once; a missing
    # plain path is kept (opening it reports it), inputs that name no video are listed by name
    assert got == ["a.mp4", "b.mp4", "c.avi", "gone.mp4"]
    assert [str(f) for f in unmatched] == ["none*.mp4: matches no file", "empty: no video files in this folder",
                                           "@blank.txt: the list names no videos"]
    sub = tmp_path / "sub"
    sub.mkdir()
    (sub / "l.txt").write_text("../b.mp4\n")
    assert expand_inputs([f"@{sub / 'l.txt'}"]) == [str(sub / "../b.mp4")]
    with pytest.raises(UsageError, match="missing.txt"):
        expand_inputs(["@missing.txt"])


# ── auhm backend (stand-in network with the landmark net's interface) ──────────────────────
class DiskNet(torch.nn.Module):
    """Puts 68 peaks on the disk in the crop, highest when the disk sits where a face would.

    In the crop convention a face's landmark box spans size/scale pixels, centred
    shift_y × box height above the crop centre; the peak height falls off with the error in
    size and position, and with how much of the disk the crop cuts off, as a trained landmark
    net's confidence does off-face.
    """

    def __init__(self, crop: CropConfig):
        super().__init__()
        self.crop = crop
        self.input_size = crop.size

    def forward(self, x):
        from auhm.targets import landmark_heatmaps

        s, b = self.crop.size, x.shape[0]
        mask = (x.mean(1) > 0.5).float()
        area = mask.sum((1, 2)).clamp(min=1)
        yy, xx = torch.meshgrid(torch.arange(s, dtype=torch.float32), torch.arange(s, dtype=torch.float32), indexing="ij")
        cx, cy = (mask * xx).sum((1, 2)) / area, (mask * yy).sum((1, 2)) / area
        r = torch.sqrt(area / torch.pi)
        face = s / self.crop.scale
        ideal = torch.tensor([s / 2, s / 2 - self.crop.shift_y * face])
        err = (2 * r / face - 1) ** 2 + ((torch.stack([cx, cy], -1) - ideal) ** 2).sum(-1) / face**2
        border = mask[:, 0].sum(-1) + mask[:, -1].sum(-1) + mask[:, :, 0].sum(-1) + mask[:, :, -1].sum(-1)
        amplitude = torch.exp(-err / 0.15 - border / (s / 8)) * (mask.sum((1, 2)) > 10)
        a = torch.linspace(0, 2 * torch.pi, 69)[:68]
        pts = torch.stack([cx[:, None] + r[:, None] * torch.cos(a), cy[:, None] + r[:, None] * torch.sin(a)], -1)
        maps = landmark_heatmaps(pts, crop_size=s, map_size=s // 4, sigma=1.0)
        return {"heatmaps": maps * amplitude.view(b, 1, 1, 1)}


def disk_backend_auhm():
    from auhm.landmarks.network import NetworkBackend

    crop = CropConfig(size=64)
    return NetworkBackend(DiskNet(crop), {"crop": crop.to_dict(), "input_size": 64, "presence_threshold": 0.3})


def test_auhm_backend_finds_and_tracks_a_face_with_its_own_network():
    backend = disk_backend_auhm()
    found = backend.detect(np.stack([disk_frame(85, 40, 18), disk_frame(None)]))
    assert len(found[0]) == 1 and found[1] == []
    box, score = found[0][0]
    np.testing.assert_allclose(box, [85 - 18, 40 - 18, 85 + 18, 40 + 18], atol=3)
    assert score > 0.5

    tracker = Tracker(backend)
    tracker.start("disk.mp4")
    xs = [30, 34, 38, 42, None, 60]
    track = tracker.update(batch([disk_frame(x, 50, 16) for x in xs]))
    np.testing.assert_array_equal(track.success, [1, 1, 1, 1, 0, 1])
    centres = track.landmarks[track.success].mean(axis=1)
    np.testing.assert_allclose(centres[:, 0], [30, 34, 38, 42, 60], atol=2)
    assert tracker.detections == 3  # first frame, the empty frame, the return


def test_auhm_candidate_squares_cover_the_frame():
    from auhm.landmarks.network import SearchConfig, candidate_squares

    sq = candidate_squares(240, 320, SearchConfig(scales=(0.5,), overlap=0.5))
    half = sq[:, 2] / 2
    assert (sq[:, 0] - half).min() == 0 and (sq[:, 0] + half).max() == 320
    assert (sq[:, 1] - half).min() == 0 and (sq[:, 1] + half).max() == 240
    assert np.allclose(sq[:, 2], 120) and len(sq) == 5 * 3


def test_network_backend_loads_a_landmark_checkpoint(tmp_path):
    """make_backend("network", model=CKPT) (or "auhm", its earlier name) holds the checkpoint's
    weights, crop convention and presence threshold, and fits as the same network handed over in
    memory does."""
    from auhm.landmarks.network import NetworkBackend
    from auhm.models import build_model, save_checkpoint

    torch.manual_seed(0)
    model = build_model("landmarks", preset="small").eval()
    crop = CropConfig(size=128, scale=1.4, shift_y=-0.05)
    info = {"task": "landmarks", "method": "landmarks", "crop": crop.to_dict(), "presence_threshold": 0.42}
    path = tmp_path / "lm.pt"
    save_checkpoint(path, model, info)
    backend = make_backend("network", model=path)
    assert backend.name == "network" and isinstance(make_backend("auhm", model=path), NetworkBackend)
    assert backend.crop == crop and backend.min_confidence == 0.42 and backend.metadata()["checkpoint"] == str(path)
    loaded = backend.model.state_dict()
    for name, tensor in model.state_dict().items():
        torch.testing.assert_close(loaded[name], tensor, msg=name)
    frames, regions = np.stack([disk_frame(60)]), ring(60, 48, 20)[None]
    lm, conf = backend.fit(frames, regions)
    want_lm, want_conf = NetworkBackend(model, info).fit(frames, regions)
    assert lm.shape == (1, 68, 2) and np.isfinite(lm).all()
    np.testing.assert_allclose(lm, want_lm, atol=1e-4)
    np.testing.assert_allclose(conf, want_conf, atol=1e-6)


# ── fan backend: loading from a local cache only ────────────────────────────────────────────
def test_fan_backend_names_missing_files(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(BackendUnavailable, match=r"2DFAN4-11f355bf06\.pth\.tar.*s3fd-619a316812\.pth"):
        make_backend("fan")


def test_fan_backend_loads_local_weights_without_network(tmp_path, monkeypatch):
    from face_alignment.detection.sfd.net_s3fd import s3fd
    from face_alignment.models import FAN

    from auhm.landmarks.fan import WEIGHT_FILES

    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    # half precision halves the file; load_state_dict casts back to float32
    expected = {k: v.half() if v.is_floating_point() else v for k, v in FAN(4).state_dict().items()}
    torch.save(expected, cache / WEIGHT_FILES["2DFAN-4"])
    torch.save(s3fd().state_dict(), cache / WEIGHT_FILES["s3fd"])
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    backend = make_backend("fan")
    # the loaded 2D-FAN-4 holds our file's weights
    name, tensor = next(iter(backend.net.state_dict().items()))
    torch.testing.assert_close(tensor, expected[name].float())
    # the S3FD detector holds our file's weights, and detect gives what face-alignment's own call
    # on it gives (random weights: many boxes), as (box, score) pairs
    detector = backend.detector.face_detector.state_dict()
    for name, tensor in torch.load(cache / WEIGHT_FILES["s3fd"], weights_only=True).items():
        torch.testing.assert_close(detector[name], tensor, msg=name)
    frame = disk_frame(60)
    found = backend.detect(frame[None])[0]
    want = backend.detector.detect_from_image(frame.copy())
    assert len(found) == len(want) > 0
    for (box, score), w in zip(found, want):
        assert box.dtype == np.float64 and box.shape == (4,) and isinstance(score, float)
        np.testing.assert_allclose([*box, score], w[:5])

    # fit's cropping and mapping back, with a fast net of the same output (FAN-4 on CPU takes seconds)
    class Peaks(torch.nn.Module):
        def forward(self, x):  # peak of every map at heatmap pixel (32, 32): the crop centre
            hm = torch.zeros(x.shape[0], 68, 64, 64)
            hm[:, :, 32, 32] = 0.8
            return [hm]

    backend.net = Peaks()
    lm, conf = backend.fit(frame[None], np.array([[40.0, 28.0, 80.0, 68.0]]))
    assert lm.shape == (1, 68, 2) and conf[0] == pytest.approx(0.8)
    centre = lm[0].mean(axis=0)
    # the crop centre: the box centre raised by 0.12 × box height (face-alignment's convention)
    np.testing.assert_allclose(centre, [60, 48 - 0.12 * 40], atol=0.6)
