"""auhm.synth: layouts byte for byte, decodable videos, determinism, AU geometry and appearance."""

from __future__ import annotations

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.data.bp4d import bp4d_subject
from auhm.data.corpora import corpus_spec
from auhm.synth import AU_MOVES, RENDERED_AUS, FaceModel, Identity, SynthConfig, disfa_subject, make_corpus
from auhm.synth.corpus import LAYOUTS, simulate_subject
from auhm.synth.drawing import Difficulty, Motion, Occluder, Renderer
from auhm.synth.episodes import au_trajectories, integer_labels
from auhm.synth.face_model import project
from auhm.targets import au_name
from auhm.video import VideoReader

from helpers import crowd_view, faces_found

SMALL = dict(frames=16, width=128, height=96, fps=10.0)
_ROW = re.compile(rb"^(\d+),(\d)$")


def _parse_rows(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Frame numbers and codes of a `frame,intensity` label file, checking every line's syntax."""
    raw = path.read_bytes()
    assert raw.endswith(b"\n") and b"\r" not in raw
    rows = [_ROW.match(line) for line in raw.splitlines()]
    assert all(rows), f"{path}: malformed line"
    return np.array([int(m.group(1)) for m in rows]), np.array([int(m.group(2)) for m in rows])


def _truth(root: Path, stem: str) -> pd.DataFrame:
    return pd.read_parquet(root / "auhm_truth" / f"{stem}.parquet")


def _rounded(values) -> np.ndarray:
    return np.floor(np.asarray(values, np.float64) + 0.5).astype(int)


# -- layouts --------------------------------------------------------------------------------
def test_disfa_corpus_from_the_cli(tmp_path):
    out = tmp_path / "disfa"
    res = CliRunner().invoke(app, ["synth", str(out), "--subjects", "2", "--frames", "24", "--size", "128x96",
                                   "--fps", "10", "--seed", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    videos = sorted((out / "Videos_LeftCamera").iterdir())
    assert [v.name for v in videos] == ["LeftVideoSN001_comp.avi", "LeftVideoSN002_comp.avi"]
    for video in videos:
        reader = VideoReader(video)
        assert (reader.info.width, reader.info.height) == (128, 96)
        assert sum(1 for _ in reader.frames()) == 24
    for sn in ("SN001", "SN002"):
        names = sorted(p.name for p in (out / "ActionUnit_Labels" / sn).iterdir())
        assert names == sorted(f"{sn}_au{a}.txt" for a in corpus_spec("disfa").aus)
        truth = _truth(out, f"LeftVideo{sn}_comp")
        assert truth["frame"].tolist() == list(range(24))
        for au in corpus_spec("disfa").aus:
            path = out / "ActionUnit_Labels" / sn / f"{sn}_au{au}.txt"
            frames, codes = _parse_rows(path)
            assert frames.tolist() == list(range(1, 25))
            assert codes.min() >= 0 and codes.max() <= 5
            np.testing.assert_array_equal(codes, _rounded(truth[au_name(au)]))
            assert path.read_bytes().startswith(f"1,{codes[0]}\n2,{codes[1]}\n".encode())
    manifest = json.loads((out / "auhm_truth" / "manifest.json").read_text())
    assert manifest["layout"] == "disfa" and manifest["subjects"] == ["SN001", "SN002"]
    assert manifest["aus"] == list(corpus_spec("disfa").aus) and manifest["frames"] == 24 and manifest["seed"] == 1
    assert manifest["size"] == [128, 96] and manifest["auhm_version"]
    sheet = cv2.imread(str(out / "auhm_truth" / "contact_sheet.png"))
    assert sheet is not None and sheet.shape[1] == 4 * 128


def test_video_holds_the_rendered_frames(tmp_path):
    config = SynthConfig(tmp_path, subjects=1, seed=3, contact_sheet=False, **SMALL)
    make_corpus(config, quiet=True)
    video = simulate_subject(config, 0, LAYOUTS["disfa"]())
    decoded = [f for _, _, f in VideoReader(tmp_path / video.session.video).frames()]
    for t in (0, 7, 15):
        rendered = video.renderer.frame(t)[0].astype(np.float64)
        mse = ((decoded[t].astype(np.float64) - rendered) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 24  # compressed, but the same picture


def test_bp4d_layout(tmp_path):
    make_corpus(SynthConfig(tmp_path, layout="bp4d", subjects=2, seed=2, contact_sheet=False, **SMALL), quiet=True)
    for subject, task in (("F001", "T1"), ("M001", "T1")):
        folder = tmp_path / "BP4D" / subject / task
        assert sorted(p.name for p in folder.iterdir()) == [f"{i:04d}.jpg" for i in range(1, 17)]
        assert cv2.imread(str(folder / "0001.jpg")).shape == (96, 128, 3)
        truth = _truth(tmp_path, f"{subject}_{task}")
        for au in corpus_spec("bp4d").aus:
            path = tmp_path / "AU Intensity Codes3.0" / f"AU{au:02d}" / f"{subject}_{task}_AU{au:02d}.csv"
            frames, codes = _parse_rows(path)
            assert frames.tolist() == list(range(1, 17))
            assert path.read_bytes().startswith(b"1,9\n")  # the first frame is left unlabelled
            labelled = codes != 9
            assert 2 <= (~labelled).sum() <= 5 and codes[labelled].max() <= 5
            np.testing.assert_array_equal(codes[labelled], _rounded(truth[au_name(au)])[labelled])
    assert [bp4d_subject(i) for i in range(5)] == [("F001", "T1"), ("M001", "T1"), ("F002", "T2"), ("M002", "T2"), ("F003", "T1")]


def test_fera2017_layout(tmp_path):
    make_corpus(SynthConfig(tmp_path, layout="fera2017", subjects=1, seed=2, contact_sheet=False, **SMALL), quiet=True)
    assert [p.name for p in (tmp_path / "Video").iterdir()] == ["FERA17_TR_F001_T1_1.mp4"]
    assert sum(1 for _ in VideoReader(tmp_path / "Video" / "FERA17_TR_F001_T1_1.mp4").frames()) == 16
    truth = _truth(tmp_path, "FERA17_TR_F001_T1_1")
    names = sorted(p.name for p in (tmp_path / "AU_Int").iterdir())
    assert names == sorted(f"FERA17_TR_F001_T1_AU{a:02d}_Int.csv" for a in (1, 4, 6, 10, 12, 14, 17))
    for au in corpus_spec("fera2017").aus:
        path = tmp_path / "AU_Int" / f"FERA17_TR_F001_T1_AU{au:02d}_Int.csv"
        frames, codes = _parse_rows(path)
        assert frames.tolist() == list(range(1, 17))
        np.testing.assert_array_equal(codes, _rounded(truth[au_name(au)]))


def test_label_file_bytes(tmp_path):
    layout = LAYOUTS["disfa"]()
    session = layout.session(13)
    labels = np.zeros((3, 12), int)
    labels[:, 0] = [0, 3, 5]
    files = layout.write_labels(tmp_path, session, labels)
    assert files[0] == "ActionUnit_Labels/SN016/SN016_au1.txt"
    assert (tmp_path / files[0]).read_bytes() == b"1,0\n2,3\n3,5\n"
    assert (tmp_path / files[-1]).read_bytes() == b"1,0\n2,0\n3,0\n"


def test_disfa_subject_ids():
    assert [disfa_subject(i) for i in (0, 12, 13, 15, 16, 17, 26, 27, 28)] == [
        "SN001", "SN013", "SN016", "SN018", "SN021", "SN023", "SN032", "SN033", "SN034"]


def test_sidecar_schema(tmp_path):
    make_corpus(SynthConfig(tmp_path, subjects=1, seed=0, contact_sheet=False, **SMALL), quiet=True)
    truth = _truth(tmp_path, "LeftVideoSN001_comp")
    assert truth["frame"].dtype == np.int32 and truth["occluded"].dtype == bool
    for c in [f"x_{i}" for i in range(68)] + [f"y_{i}" for i in range(68)] + [au_name(a) for a in RENDERED_AUS]:
        assert truth[c].dtype == np.float32, c
    assert {"yaw", "pitch", "roll"} <= set(truth.columns)
    xs = truth[[f"x_{i}" for i in range(68)]].to_numpy()
    assert np.isfinite(xs).all() and 0 < np.median(xs) < 128


# -- determinism ----------------------------------------------------------------------------
def _label_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "ActionUnit_Labels").rglob("*.txt"))}


def test_same_seed_same_corpus_other_seed_other_corpus(tmp_path):
    runs = {}
    for name, seed in (("a", 5), ("b", 5), ("c", 6)):
        make_corpus(SynthConfig(tmp_path / name, subjects=2, seed=seed, contact_sheet=False, **SMALL), quiet=True)
        runs[name] = (_label_bytes(tmp_path / name), _truth(tmp_path / name, "LeftVideoSN002_comp"))
    assert runs["a"][0] == runs["b"][0]
    pd.testing.assert_frame_equal(runs["a"][1], runs["b"][1])
    assert runs["a"][0] != runs["c"][0]
    assert not np.allclose(runs["a"][1]["x_30"], runs["c"][1]["x_30"])


def test_first_subject_makes_the_same_held_out_subject(tmp_path):
    make_corpus(SynthConfig(tmp_path / "all", subjects=3, seed=4, contact_sheet=False, **SMALL), quiet=True)
    make_corpus(SynthConfig(tmp_path / "held", subjects=1, first_subject=2, seed=4, contact_sheet=False, **SMALL), quiet=True)
    assert _label_bytes(tmp_path / "held") == {k: v for k, v in _label_bytes(tmp_path / "all").items() if "SN003" in k}
    # a second run into the same folder adds its subjects to the manifest
    make_corpus(SynthConfig(tmp_path / "held", subjects=1, seed=4, contact_sheet=False, **SMALL), quiet=True)
    manifest = json.loads((tmp_path / "held" / "auhm_truth" / "manifest.json").read_text())
    assert manifest["subjects"] == ["SN001", "SN003"] and len(manifest["videos"]) == 2


# -- the face model -------------------------------------------------------------------------
def _frontal(model: FaceModel, intensities: np.ndarray) -> np.ndarray:
    shapes = model.deform(intensities)
    n = len(intensities)
    xy, _ = project(shapes, np.zeros(n), np.zeros(n), np.zeros(n), np.full(n, 100.0), np.zeros(n), np.zeros(n))
    return xy[:, :68]


@pytest.mark.parametrize("identity_seed", [None, 7])
def test_each_au_moves_its_landmarks_and_only_those(identity_seed):
    idn = Identity() if identity_seed is None else Identity.sample(np.random.default_rng(identity_seed))
    model = FaceModel(idn)
    for k, au in enumerate(RENDERED_AUS):
        one = np.zeros((2, len(RENDERED_AUS)))
        one[1, k] = 5
        xy = _frontal(model, one)
        disp = np.linalg.norm(xy[1] - xy[0], axis=1)  # pixels, at 100 px per face half-width
        moved = np.array(AU_MOVES[au])
        others = np.setdiff1d(np.arange(68), moved)
        assert disp[moved].mean() > 2.0, au
        assert disp[others].max() < 0.05 * disp[moved].mean(), au


def _still_motion(n: int) -> Motion:
    z = np.zeros(n)
    return Motion(z, z, z, np.full(n, 60.0), np.full(n, 128.0), np.full(n, 120.0), z, np.ones(n), z, z, z)


def test_each_au_changes_the_picture_near_its_location():
    clean = Difficulty(0, 0, 0, (0.25, 0.25), 0, 0.3, 0, 0, 0, 0.0, 0.0, 2)
    n = len(RENDERED_AUS) + 1
    intens = np.zeros((n, len(RENDERED_AUS)), np.float32)
    for k in range(len(RENDERED_AUS)):
        intens[k + 1, k] = 5
    r = Renderer(FaceModel(Identity()), intens, _still_motion(n), [], 256, 240, clean, np.random.default_rng(0))
    grey = [cv2.cvtColor(r.frame(t)[0], cv2.COLOR_RGB2GRAY).astype(np.int16) for t in range(n)]
    lm = r.landmarks[0]
    for k, au in enumerate(RENDERED_AUS):
        changed = np.argwhere(np.abs(grey[k + 1] - grey[0]) > 20)[:, ::-1]  # (x, y)
        assert len(changed) > 30, au
        # the change happens where FACS puts it: near the landmarks the AU moves
        near = np.linalg.norm(changed[:, None, :] - lm[list(AU_MOVES[au])][None], axis=2).min(1)
        assert np.median(near) < 12, au


def test_occluder_over_the_mouth_is_flagged():
    n = 10
    clean = Difficulty(0, 0, 0, (0.25, 0.25), 0, 0.3, 0, 0, 0, 0.0, 0.0, 2)
    occ = [Occluder(start=0, length=n, kind="bar", colour=(0, 0, 255), target=62, side=0.0, angle=0.0)]
    intens = np.zeros((n, len(RENDERED_AUS)), np.float32)
    with_bar = Renderer(FaceModel(Identity()), intens, _still_motion(n), occ, 256, 240, clean, np.random.default_rng(0))
    without = Renderer(FaceModel(Identity()), intens, _still_motion(n), [], 256, 240, clean, np.random.default_rng(0))
    assert with_bar.frame(n // 2)[1] and not without.frame(n // 2)[1]
    assert not with_bar.frame(0)[1]  # still off the face when it starts sliding in


# -- trajectories ---------------------------------------------------------------------------
def test_trajectories_are_sparse_and_co_occur_like_real_ones():
    labels = np.concatenate([integer_labels(au_trajectories(np.random.default_rng(s), 1500, 20)) for s in range(12)])
    active = labels >= 1
    assert (active.mean(0) < 0.5).all() and (active.mean(0) > 0.04).all()  # most frames 0, every AU seen
    assert set(np.unique(labels)) == {0, 1, 2, 3, 4, 5}
    col = {au: k for k, au in enumerate(RENDERED_AUS)}
    r = lambda a, b: np.corrcoef(labels[:, col[a]], labels[:, col[b]])[0, 1]  # noqa: E731
    assert r(6, 12) > 0.3 and r(1, 2) > 0.2 and r(25, 26) > 0.2
    assert abs(r(2, 15)) < 0.15


def test_labels_round_half_up():
    np.testing.assert_array_equal(integer_labels(np.array([0.0, 0.49, 0.5, 1.5, 2.51, 4.9, 5.0])), [0, 0, 1, 2, 3, 5, 5])


def test_bad_options_are_usage_errors(tmp_path):
    runner = CliRunner()
    assert runner.invoke(app, ["synth", str(tmp_path), "--size", "320by240"]).exit_code == 2
    assert runner.invoke(app, ["synth", str(tmp_path), "--layout", "ck+"]).exit_code == 2
    assert runner.invoke(app, ["synth", str(tmp_path), "--difficulty", "extreme"]).exit_code == 2
    assert runner.invoke(app, ["synth", str(tmp_path), "--size", "321x240"]).exit_code == 2


# -- the crowd layout -----------------------------------------------------------------------
CROWD = dict(layout="crowd", frames=40, width=320, height=180, fps=10.0, contact_sheet=False)


def _crowd_truth(root: Path, index: int) -> pd.DataFrame:
    return _truth(root, f"crowd{index:03d}")


def test_crowd_layout_from_the_cli(tmp_path):
    res = CliRunner().invoke(app, ["synth", str(tmp_path), "--layout", "crowd", "--subjects", "2", "--frames", "40",
                                   "--size", "320x180", "--fps", "10", "--seed", "1", "--quiet"])
    assert res.exit_code == 0, res.output
    labels = pd.read_parquet(tmp_path / "labels.parquet")
    assert sorted(labels["video"].unique()) == ["videos/crowd000.mp4", "videos/crowd001.mp4"]
    for index in (0, 1):
        video = tmp_path / "videos" / f"crowd{index:03d}.mp4"
        reader = VideoReader(video)
        assert (reader.info.width, reader.info.height) == (320, 180) and sum(1 for _ in reader.frames()) == 40
        truth = _crowd_truth(tmp_path, index)
        assert truth["frame"].dtype == np.int32 and truth["face"].dtype == np.int16
        for c in ["x0", "y0", "x1", "y1", "visible", "x_0", "y_67", "AU12"]:
            assert truth[c].dtype == np.float32, c
        faces = sorted(truth["face"].unique())
        assert faces == list(range(len(faces))) and 2 <= len(faces) <= 4
        assert not truth.duplicated(["frame", "face"]).any()
        assert ((truth["x0"] <= truth["x1"]) & (truth["y0"] <= truth["y1"])).all()
        assert truth[["x0", "x1"]].to_numpy().min() >= 0 and truth[["x0", "x1"]].to_numpy().max() <= 320
        assert ((truth["visible"] > 0) & (truth["visible"] <= 1)).all()
        # the box bounds the landmarks inside the frame
        xs = truth[[f"x_{k}" for k in range(68)]].to_numpy()
        np.testing.assert_allclose(truth["x1"], np.clip(xs.max(1), 0, 320), atol=1e-3)
        # labels: one row per truth row, each person's own intensities rounded half up
        mine = labels[labels["video"] == f"videos/crowd{index:03d}.mp4"].sort_values(["frame", "face"], ignore_index=True)
        truth = truth.sort_values(["frame", "face"], ignore_index=True)
        np.testing.assert_array_equal(mine[["frame", "face"]].to_numpy(), truth[["frame", "face"]].to_numpy())
        for au in RENDERED_AUS:
            np.testing.assert_array_equal(mine[au_name(au)], _rounded(truth[au_name(au)]))
        assert mine.groupby("face")["AU12"].apply(tuple).nunique() == len(faces)  # each person has AUs of their own


def _centre_x(truth: pd.DataFrame) -> pd.DataFrame:
    return truth.assign(cx=(truth["x0"] + truth["x1"]) / 2).pivot(index="frame", columns="face", values="cx")


@pytest.mark.parametrize("seed", [0, 3])
def test_crowd_people_cross_hide_each_other_enter_and_leave(tmp_path, seed):
    config = SynthConfig(tmp_path, subjects=2, seed=seed, **CROWD)
    make_corpus(config, quiet=True)
    for index in range(2):
        truth = _crowd_truth(tmp_path, index)
        first, last = truth.groupby("face")["frame"].min(), truth.groupby("face")["frame"].max()
        assert (first > 0).any() and (last < config.frames - 1).any()  # someone walks in, someone walks out
        assert (first == 0).any()  # and someone is there from the start
        # a crossing: two people's left-to-right order swaps
        cx = _centre_x(truth)
        crossed = [(a, b) for a in cx for b in cx if a < b and len(np.unique(np.sign((cx[a] - cx[b]).dropna()))) == 2]
        assert crossed
        # an occlusion: a face well inside the frame but mostly hidden, behind a larger face seen whole
        inside = (truth["x0"] > 1) & (truth["x1"] < config.width - 1)
        hidden = truth[inside & (truth["visible"] < 0.5)]
        assert len(hidden)
        frame = truth[truth["frame"] == hidden["frame"].iloc[0]]
        assert ((frame["visible"] > 0.99) & ((frame["x1"] - frame["x0"]) > (hidden["x1"] - hidden["x0"]).iloc[0])).any()


def test_crowd_same_seed_same_videos_other_seed_other(tmp_path):
    runs = {}
    for name, seed in (("a", 2), ("b", 2), ("c", 5)):
        make_corpus(SynthConfig(tmp_path / name, subjects=1, seed=seed, **CROWD), quiet=True)
        runs[name] = (pd.read_parquet(tmp_path / name / "labels.parquet"), _crowd_truth(tmp_path / name, 0))
    pd.testing.assert_frame_equal(runs["a"][0], runs["b"][0])
    pd.testing.assert_frame_equal(runs["a"][1], runs["b"][1])
    assert not runs["a"][1].equals(runs["c"][1])


def test_crowd_people_are_distinct_and_video_holds_the_rendered_frames(tmp_path):
    from auhm.synth.crowd import render_crowd_frame, simulate_crowd

    config = SynthConfig(tmp_path, subjects=1, seed=4, **CROWD)
    make_corpus(config, quiet=True)
    people = simulate_crowd(config, 0)
    assert len({p.renderer.model.identity for p in people}) == len(people)
    decoded = [f for _, _, f in VideoReader(tmp_path / "videos" / "crowd000.mp4").frames()]
    for t in (0, 20, 39):
        rendered = render_crowd_frame(people, t)[0].astype(np.float64)
        mse = ((decoded[t].astype(np.float64) - rendered) ** 2).mean()
        assert 10 * np.log10(255**2 / mse) > 24


def test_truth_sidecar_reader_keeps_a_face_column(tmp_path):
    from auhm.face.truth_backend import read_sidecar

    make_corpus(SynthConfig(tmp_path, subjects=1, seed=0, **CROWD), quiet=True)
    truth = _crowd_truth(tmp_path, 0)
    read = read_sidecar(tmp_path / "auhm_truth" / "crowd000.parquet")
    assert len(read) == len(truth) and read["success"].all()
    pairs = sorted(zip(read.index, read["face"]))
    assert pairs == sorted(zip(truth["frame"], truth["face"]))
    one = read[(read.index == 5) & (read["face"] == 0)]
    np.testing.assert_allclose(one["x_30"], truth[(truth["frame"] == 5) & (truth["face"] == 0)]["x_30"])


def test_crowd_faces_are_found_by_the_default_detector(tmp_path):
    from auhm.face.detectors import available, make_detector

    if not available("dlib"):
        pytest.skip("dlib not installed")
    view = crowd_view(tmp_path)
    detect, wanted, found = make_detector("dlib"), 0, 0
    for t in (0, 39):  # before the walker crosses and after
        rgb, truth = view(t)
        wanted += len(truth)
        found += faces_found(detect(rgb), truth)
        assert (truth["x1"] - truth["x0"]).min() >= 90
    assert wanted >= 2 and found == wanted
