"""``auhm prepare`` end to end on small generated corpora with real compressed video and true landmarks."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.data import PrepareConfig, ShardDataset, list_shards, prepare_corpus
from auhm.data.prepare import shard_name
from auhm.face.crop import CropConfig, crop_affine, crop_square
from auhm.errors import UsageError
from auhm.io import read_metadata

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
W, H, N = 128, 96, 12
SIZE = 64
runner = CliRunner()


def face_landmarks(frame: int, subject: int) -> np.ndarray:
    """68 points in a 44×50 box that drifts with the frame; point 30 (nose tip) near its centre."""
    rng = np.random.default_rng(subject)
    pts = rng.uniform([0, 0], [44, 50], (68, 2))
    pts[30] = (22, 25)
    return (pts + (30 + 2 * frame, 20 + frame % 4)).astype(np.float32)


def background(frame: int) -> int:
    return 20 + 15 * frame


def write_video(path, subject: int, n: int = N) -> None:
    """Background grey level encodes the frame index; a white square sits on the nose tip."""
    from auhm.video import VideoWriter

    with VideoWriter(path, 10.0, W, H, quality=2) as vw:
        for t in range(n):
            img = np.full((H, W, 3), background(t), np.uint8)
            x, y = face_landmarks(t, subject)[30].round().astype(int)
            img[y - 3 : y + 4, x - 3 : x + 4] = 255
            vw.write(img)


def label_value(subject: int, au: int, t: int) -> int:
    """9 here and there, and in every AU at SN001's frame 7 (an unlabelled frame)."""
    return 9 if (t + au) % 5 == 0 or (subject, t) == (1, 7) else (t * au + subject) % 6


def truth_table(frames: np.ndarray, landmarks: np.ndarray) -> pd.DataFrame:
    """The sidecar `auhm synth` writes: frame, x_0…x_67, y_0…y_67 in frame pixels."""
    cols = {"frame": frames}
    cols |= {f"x_{k}": landmarks[:, k, 0] for k in range(68)}
    cols |= {f"y_{k}": landmarks[:, k, 1] for k in range(68)}
    return pd.DataFrame(cols)


def write_synth_tree(root, subjects=(1, 2, 3), label_len=None, no_face=()) -> None:
    """The DISFA layout as `auhm synth` writes it: video, label files, truth sidecar, manifest."""
    label_len = label_len or {}
    (root / "auhm_truth").mkdir(parents=True, exist_ok=True)
    for i in subjects:
        s = f"SN{i:03d}"
        stem = f"LeftVideo{s}_comp"
        (root / "Videos_LeftCamera").mkdir(parents=True, exist_ok=True)
        write_video(root / "Videos_LeftCamera" / f"{stem}.avi", i)
        labels = root / "ActionUnit_Labels" / s
        labels.mkdir(parents=True, exist_ok=True)
        for au in DISFA_AUS:
            n = label_len.get(i, N)
            (labels / f"{s}_au{au}.txt").write_text("".join(f"{t + 1},{label_value(i, au, t)}\n" for t in range(n)))
        lm = np.stack([face_landmarks(t, i) for t in range(N)])
        lm[[t for (j, t) in no_face if j == i]] = np.nan
        truth_table(np.arange(N), lm).to_parquet(root / "auhm_truth" / f"{stem}.parquet")
    (root / "auhm_truth" / "manifest.json").write_text(json.dumps({"layout": "disfa", "heldout": []}))


def read_label_files(root) -> dict[tuple[str, int], dict[str, float]]:
    """An independent parse of DISFA label files: {(video key, 0-based frame): {AUxx: value or nan}}."""
    out: dict = {}
    for f in sorted((root / "ActionUnit_Labels").glob("SN*/SN*_au*.txt")):
        subject, au = f.stem.split("_au")
        key = f"Videos_LeftCamera/LeftVideo{subject}_comp.avi"
        for line in f.read_text().splitlines():
            frame, value = (int(x) for x in line.split(","))
            out.setdefault((key, frame - 1), {})[f"AU{int(au):02d}"] = float(value) if value <= 5 else np.nan
    return out


@pytest.fixture(scope="module")
def synth_tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    # SN001's label files run 2 frames past the video, SN002's stop 3 frames short.
    write_synth_tree(root, label_len={1: N + 2, 2: N - 3}, no_face={(3, 5), (3, 6)})
    return root


def test_prepare_synth_cli_labels_shards_manifest(synth_tree, tmp_path):
    out = tmp_path / "work"
    result = runner.invoke(app, ["prepare", "synth", str(synth_tree), "--out", str(out), "--landmarks", "truth", "--size", str(SIZE), "-q"])
    assert result.exit_code == 0, result.output

    # labels.parquet equals the label files exactly (9 → null), including frames past the video.
    labels = pd.read_parquet(out / "labels.parquet")
    expected = read_label_files(synth_tree)
    assert len(labels) == len(expected) == 3 * N - 1
    assert pq.read_schema(out / "labels.parquet").field("AU01").type == "float"
    for row in labels.itertuples(index=False):
        want = expected[(row.video, row.frame)]
        for au, v in want.items():
            got = getattr(row, au)
            assert (np.isnan(v) and np.isnan(got)) or got == v, (row.video, row.frame, au)

    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["kind"] == "synth" and manifest["aus"] == list(DISFA_AUS)
    assert manifest["crop"]["size"] == SIZE and manifest["landmark_backend"] == "truth"
    assert manifest["splits"] == {"part1": ["SN001"], "part2": ["SN002"], "part3": ["SN003"]}
    assert manifest["folds"] == ["part1", "part2", "part3"]
    v1, v2, v3 = (f"Videos_LeftCamera/LeftVideoSN00{i}_comp.avi" for i in (1, 2, 3))
    assert manifest["mismatches"][v1] == {"video_frames": N, "label_frames": N + 2, "labels_past_video": 2, "frames_past_labels": 0}
    assert manifest["mismatches"][v2]["frames_past_labels"] == 3 and v3 not in manifest["mismatches"]
    assert manifest["videos"][v3]["skipped"] == {"no_face": 2}
    # SN002's last 3 frames have no label rows; SN001's frame 7 is 9 in every AU: both unlabelled.
    assert manifest["videos"][v2] == {
        "subject": "SN002",
        "split": "part2",
        "frames": N,
        "labelled": N - 3,
        "skipped": {"unlabelled": 3},
    }
    assert manifest["videos"][v1]["labelled"] == N - 1 and manifest["videos"][v1]["skipped"] == {"unlabelled": 1}
    assert manifest["videos"][v3]["labelled"] == N - 2
    assert manifest["skipped"] == {"unlabelled": 4, "no_face": 2}
    assert manifest["failures"] == []

    # Shards: right crops of the right frames, landmarks inside the crop, labels aligned by frame.
    shards = list_shards(out)
    assert [p.name for p in shards] == sorted(shard_name(v) for v in (v1, v2, v3))
    ds = ShardDataset(shards)
    assert len(ds) == 3 * N - 6 and ds.aus == list(DISFA_AUS)
    for k in range(len(ds)):
        video, frame = ds.video[k], int(ds.frame[k])
        subject = int(video[-10:-9])
        truth = face_landmarks(frame, subject)
        affine = pq.read_table(out / "shards" / shard_name(video), columns=["frame", "crop_affine"]).to_pandas()
        m = np.asarray(affine.loc[affine.frame == frame, "crop_affine"].iloc[0]).reshape(2, 3)
        np.testing.assert_allclose(m, crop_affine(crop_square(truth, CropConfig(size=SIZE)), SIZE), rtol=1e-5, atol=1e-3)
        item = ds[k]
        lm = item["landmarks"]
        assert (lm >= 0).all() and (lm < SIZE).all()
        np.testing.assert_allclose(lm, truth @ m[:, :2].T + m[:, 2], atol=1e-3)
        img = item["image"].astype(int)
        nx, ny = lm[30].round().astype(int)
        assert img[ny, nx].min() > 200  # the nose-tip square of this very frame
        assert abs(img[2, 2].mean() - background(frame)) < 8  # the grey level of this frame
        for j, au in enumerate(DISFA_AUS):
            v = label_value(subject, au, frame)
            assert (v == 9 and np.isnan(item["labels"][j])) or item["labels"][j] == v


def test_prepare_disfa_on_synth_tree_uses_standard_parts(synth_tree, tmp_path):
    report = prepare_corpus("disfa", synth_tree, tmp_path / "d", PrepareConfig(crop=CropConfig(size=SIZE)), quiet=True)
    assert not report.failures and len(report.written) == 3
    manifest = json.loads((tmp_path / "d/manifest.json").read_text())
    assert manifest["kind"] == "disfa" and manifest["splits"] == {"part1": ["SN001", "SN002"], "part3": ["SN003"]}
    assert manifest["folds"] == ["part1", "part3"]
    assert set(ShardDataset(list_shards(tmp_path / "d"), splits=["part3"]).subject) == {"SN003"}


def test_resume_skips_done_and_survives_a_crash(synth_tree, tmp_path, monkeypatch):
    import auhm.io

    out = tmp_path / "r"
    cfg = PrepareConfig(crop=CropConfig(size=SIZE), every=2)
    real_write = auhm.io.pq.write_table
    calls = {"n": 0}

    def crash_on_second_shard(table, where, *a, **k):
        if "shards" in str(where):
            calls["n"] += 1
            if calls["n"] == 2:
                real_write(table.slice(0, 1), where)  # half a file on disk, then the power goes
                raise KeyboardInterrupt
        return real_write(table, where, *a, **k)

    monkeypatch.setattr(auhm.io.pq, "write_table", crash_on_second_shard)
    with pytest.raises(KeyboardInterrupt):
        prepare_corpus("synth", synth_tree, out, cfg, quiet=True)
    monkeypatch.undo()
    assert len(list_shards(out)) == 1  # the interrupted shard is not there as a complete one
    (out / "shards" / f".{shard_name('Videos_LeftCamera/LeftVideoSN003_comp.avi')}.x1.tmp").write_bytes(b"PAR1 half")
    assert len(list_shards(out)) == 1

    second = prepare_corpus("synth", synth_tree, out, cfg, quiet=True)
    assert len(second.resumed) == 1 and len(second.written) == 2 and not second.failures
    third = prepare_corpus("synth", synth_tree, out, cfg, quiet=True)
    assert len(third.resumed) == 3 and third.written == [] and third.frames == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert sum(v["labelled"] for v in manifest["videos"].values()) == len(ShardDataset(list_shards(out)))
    assert all(f % 2 == 0 for f in ShardDataset(list_shards(out)).frame)  # --every 2
    assert read_metadata(list_shards(out)[0])["stats"]["frames"] == N // 2
    with pytest.raises(UsageError, match="prepared with crop"):  # resuming must not mix crop conventions
        prepare_corpus("synth", synth_tree, out, PrepareConfig(crop=CropConfig(size=SIZE * 2)), quiet=True)


def test_bad_inputs_are_reported_and_the_rest_processed(tmp_path):
    root = tmp_path / "bad"
    write_synth_tree(root, subjects=(1, 2, 3, 4))
    (root / "Videos_LeftCamera/LeftVideoSN002_comp.avi").write_bytes(b"")
    (root / "Videos_LeftCamera/LeftVideoSN003_comp.avi").write_bytes(np.random.default_rng(0).bytes(5000))
    for f in (root / "ActionUnit_Labels/SN004").iterdir():
        f.unlink()
    (root / "ActionUnit_Labels/SN001/SN001_au26.txt").unlink()
    out = tmp_path / "w"
    result = runner.invoke(app, ["prepare", "synth", str(root), "--out", str(out), "--size", str(SIZE), "-q"])
    assert result.exit_code == 1
    lines = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(lines) == 3
    assert any("LeftVideoSN002_comp.avi" in line and "empty file" in line for line in lines)
    assert any("LeftVideoSN003_comp.avi" in line and "cannot decode" in line for line in lines)
    assert any("LeftVideoSN004_comp.avi" in line and "no label files for SN004" in line for line in lines)
    assert "SN001_au26.txt" in result.output and "missing label file" in result.output
    assert [p.name for p in list_shards(out)] == [shard_name("Videos_LeftCamera/LeftVideoSN001_comp.avi")]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["failures"]) == 3 and manifest["videos"].keys() == {"Videos_LeftCamera/LeftVideoSN001_comp.avi"}
    shard_labels = ShardDataset(list_shards(out)).labels
    assert len(shard_labels) == N - 1 and np.isnan(shard_labels[:, DISFA_AUS.index(26)]).all()
    assert not np.isnan(shard_labels[:, DISFA_AUS.index(25)]).all()


def test_prepare_bp4d_image_sequence_frame_numbers(tmp_path):
    root = tmp_path / "bp4d"
    folder = root / "F003" / "T2"
    folder.mkdir(parents=True)
    first, n = 2440, 4
    (root / "auhm_truth").mkdir()
    # The truth sidecar counts a sequence's frames from 0; labels use the numbers in the file names.
    truth_table(np.arange(n), np.stack([face_landmarks(t, 1) for t in range(n)])).to_parquet(root / "auhm_truth" / "F003_T2.parquet")
    for t in range(n):
        img = np.full((H, W, 3), background(t), np.uint8)
        cv2.imwrite(str(folder / f"{first + t}.jpg"), img)
    for au in (6, 10, 12, 14, 17):
        d = root / "AU Intensity Codes3.0" / f"AU{au:02d}"
        d.mkdir(parents=True)
        rows = [f"{first + t},{9 if t == 0 else (t + au) % 6}" for t in range(n + 1)]  # one row past the images
        (d / f"F003_T2_AU{au:02d}.csv").write_text("\n".join(rows) + "\n")
    report = prepare_corpus("bp4d", root, tmp_path / "o", PrepareConfig(crop=CropConfig(size=SIZE)), quiet=True)
    assert not report.failures and report.frames == n - 1 and report.skipped == {"unlabelled": 1}
    assert report.mismatches["F003/T2"]["labels_past_video"] == 1
    ds = ShardDataset(list_shards(tmp_path / "o"))
    assert ds.frame.tolist() == [2441, 2442, 2443] and set(ds.split) == {"train"}
    assert ds.labels[:, 0].tolist() == [(t + 6) % 6 for t in (1, 2, 3)]
    assert abs(ds.image(2)[2, 2].mean() - background(3)) < 8
    for k, t in enumerate((1, 2, 3)):
        m = crop_affine(crop_square(face_landmarks(t, 1), CropConfig(size=SIZE)), SIZE)
        np.testing.assert_allclose(ds.landmarks[k], face_landmarks(t, 1) @ m[:, :2].T + m[:, 2], atol=1e-3)


def test_landmark_backend_option_passes_through(synth_tree, tmp_path):
    result = runner.invoke(app, ["prepare", "synth", str(synth_tree), "--out", str(tmp_path / "x"), "--landmarks", "auhm", "-q"])
    assert result.exit_code == 2 and "--landmark-model" in result.output
    result = runner.invoke(app, ["prepare", "synth", str(synth_tree), "--out", str(tmp_path / "x"), "--landmarks", "openface", "-q"])
    assert result.exit_code == 2 and "unknown landmark backend 'openface'" in result.output
    result = runner.invoke(app, ["prepare", "synth", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "-q"])
    assert result.exit_code == 2 and "no such directory" in result.output


def test_prepare_real_video_with_dlib_landmarks(media, tmp_path):
    """A manifest CSV over real face videos, landmarks from dlib: crops only where a face was found."""
    rows = ["video,frame,AU12"] + [f"single_face.mp4,{t},{t % 6}" for t in range(0, 72, 12)] + ["no_face.mp4,0,1", "no_face.mp4,12,2"]
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "single_face.mp4").symlink_to(media / "single_face.mp4")
    (tmp_path / "no_face.mp4").symlink_to(media / "no_face.mp4")
    config = PrepareConfig(landmarks="dlib", crop=CropConfig(size=SIZE), every=12)
    report = prepare_corpus("csv", tmp_path / "m.csv", tmp_path / "o", config, quiet=True)
    assert not report.failures and report.frames == 6 and report.skipped["no_face"] == 2
    ds = ShardDataset(list_shards(tmp_path / "o"))
    assert set(ds.video) == {"single_face.mp4"} and ds.frame.tolist() == [0, 12, 24, 36, 48, 60]
    assert ds.labels[:, 0].tolist() == [t % 6 for t in range(0, 72, 12)]
    # dlib's face fills the crop: landmarks spread over most of it, none outside.
    spread = ds.landmarks.max(axis=1) - ds.landmarks.min(axis=1)
    assert (ds.landmarks >= 0).all() and (ds.landmarks < SIZE).all() and (spread > 0.5 * SIZE).all()


def test_shard_names_are_unique_and_readable():
    assert shard_name("Videos_LeftCamera/LeftVideoSN001_comp.avi") == "Videos_LeftCamera__LeftVideoSN001_comp.avi.parquet"
    keys = ["a/b.mp4", "a__b.mp4", "a b.mp4", "a_b.mp4", "/abs/x y.mp4", "../up.mp4", "BP4D/F001/T1"]
    names = [shard_name(k) for k in keys]
    assert len(set(names)) == len(keys) and all(not n.startswith(".") and "/" not in n for n in names)
