"""`auhm landmarks` end to end: bad inputs isolated, real media through dlib (skipped without it)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.io import read_metadata
from auhm.video import VideoWriter

from helpers import write_truncated_video

XS = [f"x_{k}" for k in range(68)]
YS = [f"y_{k}" for k in range(68)]


def run(*args: str):
    return CliRunner().invoke(app, ["landmarks", *args, "--quiet"])


def write_video(path: Path, n: int = 6) -> None:
    rng = np.random.default_rng(0)
    with VideoWriter(path, 10, 64, 48) as w:
        for _ in range(n):
            w.write(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))


def write_truth(root: Path, stem: str, n: int) -> None:
    pts = np.random.default_rng(1).uniform(5, 40, (n, 68, 2))
    table = {"frame": np.arange(n)} | {x: pts[:, k, 0] for k, x in enumerate(XS)} | {y: pts[:, k, 1] for k, y in enumerate(YS)}
    (root / "auhm_truth").mkdir(exist_ok=True)
    pd.DataFrame(table).to_parquet(root / "auhm_truth" / f"{stem}.parquet")


def test_bad_inputs_are_reported_one_line_each_and_the_rest_processed(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, 6)
    write_truth(tmp_path, "good", 6)
    data = good.read_bytes()
    bad = {
        "empty.mp4": b"",
        "random.mp4": np.random.default_rng(2).integers(0, 256, 5000, dtype=np.uint8).tobytes(),
        "truncated.mp4": data[: len(data) // 2],
    }
    for name, content in bad.items():
        (tmp_path / name).write_bytes(content)
    missing = tmp_path / "missing.mp4"
    inputs = [str(tmp_path / n) for n in ("empty.mp4", "random.mp4")] + [str(good), str(tmp_path / "truncated.mp4"), str(missing)]
    out = tmp_path / "lm.parquet"
    result = run(*inputs, "--backend", "truth", "--out", str(out))
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert len(errors) == 4
    for name, reason in [("empty.mp4", "empty file"), ("random.mp4", "cannot decode"), ("truncated.mp4", "cannot decode"), ("missing.mp4", "no such file")]:
        assert any(name in line and reason in line for line in errors), (name, errors)
    table = pd.read_parquet(out)
    assert set(table["video"]) == {str(good)} and len(table) == 6 and table["success"].all()
    assert read_metadata(out)["backend"] == "truth"
    none = tmp_path / "none.parquet"
    assert run(inputs[0], inputs[1], "--backend", "truth", "--out", str(none)).exit_code == 1 and not none.exists()  # no 0-row file


def test_inputs_that_name_no_video_are_reported_by_name(tmp_path):
    good = tmp_path / "good.mp4"
    write_video(good, 3)
    write_truth(tmp_path, "good", 3)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no videos here")
    out = tmp_path / "lm.parquet"
    result = run(str(good), str(tmp_path / "empty"), str(tmp_path / "nothing*.mp4"), "--backend", "truth", "--out", str(out))
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error ")]
    assert errors == [f"error {tmp_path / 'empty'}: no video files in this folder", f"error {tmp_path / 'nothing*.mp4'}: matches no file"]
    assert len(pd.read_parquet(out)) == 3
    alone = run(str(tmp_path / "empty"), "--backend", "truth", "--out", str(tmp_path / "o.parquet"))
    assert alone.exit_code == 2 and f"{tmp_path / 'empty'}: no video files in this folder" in alone.output
    assert not (tmp_path / "o.parquet").exists()


def test_a_truncated_video_fails_by_name_with_both_counts_and_keeps_its_rows(tmp_path):
    cut = write_truncated_video(tmp_path / "cut.mp4", n=60, keep=0.8)
    write_truth(tmp_path, "cut", 60)
    out = tmp_path / "lm.parquet"
    result = run(str(cut), "--backend", "truth", "--out", str(out))
    assert result.exit_code == 1, result.output
    rows = len(pd.read_parquet(out))
    assert 10 < rows < 56
    assert f"error {cut}: incomplete, decoded {rows} of the 60 frames its container claims (the frames decoded are kept)" in result.output


def test_an_output_that_cannot_be_written_is_a_usage_error_before_any_work(tmp_path):
    video = tmp_path / "v.mp4"
    write_video(video, 2)
    (tmp_path / "file").write_text("a file where a folder should be")
    result = run(str(video), "--backend", "truth", "--out", str(tmp_path / "file" / "lm.parquet"))
    assert result.exit_code == 2, result.output
    assert result.output.strip() == f"usage error --out {tmp_path / 'file' / 'lm.parquet'}: {tmp_path / 'file'} is a file, not a folder"


def test_usage_errors_exit_2(tmp_path):
    assert run(str(tmp_path / "a.mp4"), "--backend", "nope", "--out", str(tmp_path / "o.parquet")).exit_code == 2
    assert run("@" + str(tmp_path / "nolist.txt"), "--out", str(tmp_path / "o.parquet")).exit_code == 2
    missing_model = run(str(tmp_path / "a.mp4"), "--backend", "auhm", "--model", str(tmp_path / "none.pt"), "--out", str(tmp_path / "o.parquet"))
    assert missing_model.exit_code == 2 and "none.pt" in missing_model.output
    no_model = run(str(tmp_path / "a.mp4"), "--backend", "auhm", "--out", str(tmp_path / "o.parquet"))
    assert no_model.exit_code == 2 and no_model.output.startswith("usage error --backend auhm needs --model CKPT")
    assert not (tmp_path / "o.parquet").exists()


def test_a_device_this_machine_lacks_is_a_usage_error(tmp_path, monkeypatch):
    import torch

    from auhm.models import build_model, save_checkpoint

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    lm = save_checkpoint(tmp_path / "lm.pt", build_model("landmarks", preset="small"), {"task": "landmarks"})
    video = tmp_path / "v.mp4"
    write_video(video, 2)
    result = run(str(video), "--backend", "auhm", "--model", str(lm), "--device", "cuda", "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 2, result.output
    assert result.output.startswith("usage error --device cuda: CUDA is not available"), result.output
    tpu = run(str(video), "--backend", "auhm", "--model", str(lm), "--device", "tpu", "--out", str(tmp_path / "o.parquet"))
    assert tpu.exit_code == 2 and tpu.output.strip() == "usage error --device tpu: choose auto, cpu, cuda or cuda:N"
    assert not (tmp_path / "o.parquet").exists()


def test_help_has_an_example():
    result = CliRunner().invoke(app, ["landmarks", "--help"])
    assert result.exit_code == 0 and "Example" in result.output


# ── real media through dlib ─────────────────────────────────────────────────────────────────
@pytest.fixture(scope="module")
def media_run(media, tmp_path_factory):
    pytest.importorskip("dlib")
    out = tmp_path_factory.mktemp("media") / "lm.parquet"
    videos = [str(media / n) for n in ("single_face.mp4", "no_face.mp4", "face_noface.mov")]
    result = CliRunner().invoke(app, ["landmarks", *videos, "--backend", "dlib", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    table = pd.read_parquet(out)
    return result, table, {Path(v).name: table[table["video"] == v].reset_index(drop=True) for v in videos}, out


def test_dlib_single_face_every_frame_plausible(media_run):
    _, _, per, out = media_run
    df = per["single_face.mp4"]
    assert len(df) == 72 and df["success"].all() and list(df["frame"]) == list(range(72))
    np.testing.assert_allclose(df["timestamp"], np.arange(72) / 30.0)
    xy = np.stack([df[XS].to_numpy(), df[YS].to_numpy()], axis=-1)
    assert (xy[..., 0] >= 0).all() and (xy[..., 0] < 640).all() and (xy[..., 1] >= 0).all() and (xy[..., 1] < 360).all()
    eye = np.linalg.norm(xy[:, 36:42].mean(1) - xy[:, 42:48].mean(1), axis=1)
    face_width = xy[:, 16, 0] - xy[:, 0, 0]
    assert 0.3 < (eye / face_width).min() and (eye / face_width).max() < 0.6  # eyes ~ 0.45 of jaw width
    assert np.abs(np.diff(xy, axis=0)).max() < 20  # no jumps between consecutive frames
    assert (df["confidence"] > 0.5).all()
    np.testing.assert_allclose(df["x0"], xy[..., 0].min(1))
    assert pq.ParquetFile(out).metadata.num_row_groups > 1  # written as it went


def test_dlib_no_face_rows_for_decoded_frames_only(media_run):
    result, _, per, _ = media_run
    df = per["no_face.mp4"]
    assert len(df) == 95 and not df["success"].any() and df[XS + ["x0"]].isna().all().all()
    assert "no_face.mp4" not in result.output  # 3 frames short of the container's count: not a loss


def test_dlib_face_then_no_face(media_run):
    df = media_run[2]["face_noface.mov"]
    assert len(df) == 169
    s = df["success"].to_numpy()
    first_miss = int(np.argmin(s))
    assert 50 <= first_miss <= 90 and s[:first_miss].all() and not s[first_miss + 5 :].any()
    assert df.loc[~df["success"], XS].isna().all().all()


def test_expand_inputs_reads_folders_globs_and_list_files(tmp_path):
    from auhm.video.inputs import expand_inputs

    (tmp_path / "a").mkdir()
    for name in ("a/x.mp4", "a/y.AVI", "a/notes.txt", "z.mov"):
        (tmp_path / name).write_bytes(b"0")
    (tmp_path / "list.txt").write_text("# videos\nz.mov\n\na/x.mp4\n")
    got = expand_inputs([str(tmp_path / "a"), f"@{tmp_path / 'list.txt'}", str(tmp_path / "*.mov")])
    assert got == [str(tmp_path / "a" / "x.mp4"), str(tmp_path / "a" / "y.AVI"), str(tmp_path / "z.mov")]


def test_every_face_has_its_track_id_and_a_frame_without_one_keeps_a_row(tmp_path):
    """Truth with two faces on frames 0–5 and none on 6–7: one row per face with ids 0 and 1 that
    hold, one null-face row per empty frame; --faces largest gives one row per frame."""
    video = tmp_path / "two.avi"
    with VideoWriter(video, 10.0, 96, 64) as vw:
        for i in range(8):
            vw.write(np.full((64, 96, 3), 40 + 10 * i, np.uint8))
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    rows = []
    for i in range(6):
        for face, (cx, r) in enumerate(((25 + i, 12), (70 - i, 9))):
            xs, ys = cx + r * np.cos(t), 32 + r * np.sin(t)
            rows.append({"frame": i, "face": face, **{f"x_{k}": xs[k] for k in range(68)}, **{f"y_{k}": ys[k] for k in range(68)}})
    (tmp_path / "auhm_truth").mkdir()
    pd.DataFrame(rows).to_parquet(tmp_path / "auhm_truth" / "two.parquet")
    out = tmp_path / "lm.parquet"
    res = CliRunner().invoke(app, ["landmarks", str(video), "--backend", "truth", "--out", str(out), "-q"])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(out)
    assert df.frame.tolist() == [0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 7]
    faces = df[df.success]
    assert faces.groupby("face").x0.apply(lambda x: bool((x.diff().dropna() * (1 if x.iloc[0] < 48 else -1) > 0).all())).all()  # each id follows its own face
    assert sorted(faces.face.unique()) == [0, 1] and df.face[~df.success].isna().all()
    largest = tmp_path / "one.parquet"
    assert CliRunner().invoke(app, ["landmarks", str(video), "--backend", "truth", "--out", str(largest), "--faces", "largest", "-q"]).exit_code == 0
    one = pd.read_parquet(largest)
    assert one.frame.tolist() == list(range(8)) and one.success.sum() == 6
