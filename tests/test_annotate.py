"""auhm annotate: rows per decoded frame, null AUs without a face, resume, failure isolation.

The model is a stand-in whose heatmap peaks are known functions of the crop (so intensities
can be checked against crops cut independently here); faces come from truth sidecars.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch

from auhm.face.crop import CropConfig, crop_face
from auhm.face.linking import People
from auhm.io import read_metadata
from auhm.video import VideoReader, VideoWriter

from helpers import (AUS, INFO, SIZE, TRACK_SIZE, SquareAU, SquareBackend, StandInAU, annotate_config, children, make_clip,
                     small_checkpoint, square_clip, square_detector, standin_script, still_running, write_truncated_video)


def test_rows_schema_metadata_and_intensities(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate
    from auhm.io import file_sha256

    face = np.ones(30, bool)
    face[10:14] = False
    clips = [make_clip(tmp_path, "a", 30, face, seed=1), make_clip(tmp_path, "b", 5, np.ones(5, bool), seed=2)]
    out = tmp_path / "pred.parquet"
    res = annotate([str(c) for c in clips], annotate_config(checkpoint, out, workers=2))
    assert not res.failures and sorted(res.written) == sorted(map(str, clips)) and res.frames == 35
    assert not (tmp_path / "pred.parquet.parts").exists()

    table = pq.read_table(out)
    assert [f.name for f in table.schema][:10] == ["video", "frame", "timestamp", "face", "success", "confidence", "x0", "y0", "x1", "y1"]
    assert str(table.schema.field("frame").type) == "int32" and str(table.schema.field("face").type) == "int16"
    assert [str(table.schema.field(c).type) for c in ("AU01", "AU02", "AU12")] == ["float", "float", "float"]
    meta = read_metadata(out)
    assert meta["checkpoint"] == file_sha256(checkpoint) and meta["aus"] == list(AUS)
    assert meta["landmark_backend"] == "truth" and meta["method"] == "scratch" and "version" in meta

    df = table.to_pandas()
    a = df[df.video == str(clips[0])]
    assert a.frame.tolist() == list(range(30)) and len(df) == 35
    assert a.success.tolist() == face.tolist()
    assert a.loc[~a.success, ["AU01", "AU02", "AU12", "x0"]].isna().all().all()
    assert a.loc[a.success, ["AU01", "AU02", "AU12"]].notna().all().all()

    # Independent reference: cut the crops here, at the model's input size, and apply the rule.
    sidecar = pd.read_parquet(tmp_path / "auhm_truth" / "a.parquet").set_index("frame")
    frames = {i: f for i, _, f in VideoReader(clips[0]).frames()}
    crop = CropConfig(SIZE, 1.3, -0.08)
    for i in (0, 9, 14, 29):
        lms = np.stack([sidecar.loc[i, [f"x_{k}" for k in range(68)]], sidecar.loc[i, [f"y_{k}" for k in range(68)]]], -1).astype(np.float64)
        c, _ = crop_face(frames[i], lms, crop)
        expect = np.clip(c.reshape(-1, 3).mean(0) / 255 * 5, 0, 5)
        got = a.set_index("frame").loc[i, ["AU01", "AU02", "AU12"]].to_numpy(float)
        np.testing.assert_allclose(got, expect, atol=1e-4)
        box = a.set_index("frame").loc[i, ["x0", "y0", "x1", "y1"]].to_numpy(float)
        np.testing.assert_allclose(box, [*lms.min(0), *lms.max(0)], atol=1e-3)


def test_batching_does_not_change_results(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate

    clips = [str(make_clip(tmp_path, n, k, np.arange(k) % 7 != 3, seed=k)) for n, k in (("x", 11), ("y", 3), ("z", 17))]
    one = annotate_config(checkpoint, tmp_path / "one.parquet", workers=1)
    one.batch_size = 1
    a = annotate(clips, one)
    cfg = annotate_config(checkpoint, tmp_path / "many.parquet", workers=3)
    cfg.batch_size = 5
    b = annotate(clips, cfg)
    assert a.frames == b.frames == 31
    da, db = pd.read_parquet(tmp_path / "one.parquet"), pd.read_parquet(tmp_path / "many.parquet")
    pd.testing.assert_frame_equal(da, db)
    assert da.video.unique().tolist() == clips  # merged in input order, whatever finished first


class OutOfOrderAU(StandInAU):
    """The stand-in in model lanes: the first batch waits until the second has finished, so the
    batch handed out first finishes last. Records the order batches finish in and the torch thread
    count each ran with."""

    def __init__(self):
        super().__init__()
        self.lock = threading.Lock()
        self.calls = 0
        self.second_done = threading.Event()
        self.finished: list[int] = []
        self.threads: list[int] = []

    def forward(self, x):
        with self.lock:
            self.calls += 1
            call = self.calls
        if call == 1:  # the predictor's probe, before any lane runs
            return super().forward(x)
        self.threads.append(torch.get_num_threads())
        if call == 2 and not self.second_done.wait(timeout=20):
            raise AssertionError("the second batch did not run while the first waited: a single lane")
        out = super().forward(x)
        with self.lock:
            self.finished.append(call)
        if call == 3:
            self.second_done.set()
        return out


def test_two_model_lanes_run_side_by_side_finish_out_of_order_and_keep_rows_and_values(tmp_path, checkpoint, monkeypatch, torch_threads):
    """Two torch threads: two single-threaded lanes, the real ``model_lanes`` (whatever the
    machine's cores); the first batch finishes after the second, and the rows equal one lane's."""
    from auhm.infer.annotate import annotate
    from auhm.infer.predictor import Predictor, model_lanes

    models = {"one lane": StandInAU(), "two lanes": OutOfOrderAU()}
    clips = [str(make_clip(tmp_path, n, k, np.arange(k) % 5 != 2, seed=k)) for n, k in (("p", 23), ("q", 9))]
    tables = {}
    for threads, name in ((1, "one lane"), (2, "two lanes")):
        torch_threads(threads)
        assert model_lanes(torch.device("cpu")) == threads
        model = models[name]
        monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, path, device="auto", precision="auto": cls(model, INFO, "cpu", precision, trace=False)))
        cfg = annotate_config(checkpoint, tmp_path / f"{threads}.parquet", workers=2)
        cfg.batch_size = 2
        assert annotate(clips, cfg).frames == 32
        tables[name] = pd.read_parquet(cfg.out)
        assert torch.get_num_threads() == threads  # single-threaded only while the lanes run
    lanes = models["two lanes"]
    faces = [int((np.arange(k) % 5 != 2).sum()) for k in (23, 9)]  # each clip one chunk, cut in batches of 2 from its start
    calls = sum(-(-f // 2) for f in faces)
    assert lanes.finished[0] == 3 and sorted(lanes.finished) == list(range(2, 2 + calls))
    assert set(lanes.threads) == {1}
    pd.testing.assert_frame_equal(tables["one lane"], tables["two lanes"])


def test_broken_video_among_good_ones(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate

    good = make_clip(tmp_path, "good", 12, np.ones(12, bool))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 this is not a video" * 20)
    no_sidecar = make_clip(tmp_path, "lonely", 6, np.ones(6, bool))
    (tmp_path / "auhm_truth" / "lonely.parquet").unlink()
    out = tmp_path / "dir"
    res = annotate([str(broken), str(good), str(no_sidecar)], annotate_config(checkpoint, out, per_video=True))
    assert res.written == [str(good)]
    assert sorted(f.path for f in res.failures) == sorted([str(broken), str(no_sidecar)])
    assert all(f.reason and "\n" not in f.reason for f in res.failures)
    assert sorted(p.name for p in out.iterdir()) == ["good.parquet"]  # no temp files left
    assert len(pd.read_parquet(out / "good.parquet")) == 12


def test_a_tracking_process_that_dies_costs_only_its_video(tmp_path, checkpoint, standin, monkeypatch):
    from auhm.face.truth_backend import TruthBackend
    from auhm.infer import annotate as mod

    good = make_clip(tmp_path, "good", 12, np.ones(12, bool))
    crash = make_clip(tmp_path, "crash", 12, np.ones(12, bool))
    start = TruthBackend.start

    def start_or_die(self, video):  # a segfault in native tracking code, as the parent sees it
        if "crash" in str(video):
            os._exit(3)
        start(self, video)

    monkeypatch.setattr(TruthBackend, "start", start_or_die)  # inherited by the forked trackers
    out = tmp_path / "dir"
    res = mod.annotate([str(crash), str(good)], annotate_config(checkpoint, out, per_video=True, workers=2))
    assert res.written == [str(good)]
    assert [(f.path, f.reason) for f in res.failures] == [(str(crash), "its tracking process died")]
    assert sorted(p.name for p in out.iterdir()) == ["good.parquet"]
    assert len(pd.read_parquet(out / "good.parquet")) == 12


def test_per_video_resume_skips_done_and_redoes_other_checkpoint(tmp_path, checkpoint, standin, monkeypatch):
    from auhm.infer.annotate import annotate

    clips = [str(make_clip(tmp_path, n, 6, np.ones(6, bool))) for n in ("p", "q")]
    out = tmp_path / "dir"
    first = annotate(clips, annotate_config(checkpoint, out, per_video=True))
    assert first.written == clips
    import auhm.landmarks

    real, made = auhm.landmarks.make_backend, []
    monkeypatch.setattr(auhm.landmarks, "make_backend", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    again = annotate(clips, annotate_config(checkpoint, out, per_video=True))
    assert again.written == [] and again.skipped == clips
    assert made == []  # nothing to do: no landmark backend loaded (dlib's takes 0.6–0.9 s)
    checkpoint.write_bytes(b"another model")
    third = annotate(clips, annotate_config(checkpoint, out, per_video=True))
    assert third.written == clips and made[0] == "truth"


def test_kill_and_resume_gives_one_row_per_frame(tmp_path, checkpoint):
    """kill -9 while the run is held just after the first video's rows were committed (the
    others not); the re-run completes, nothing lost or doubled."""
    n = [24, 16, 20]
    clips = [str(make_clip(tmp_path, f"k{i}", k, np.arange(k) % 5 != 0, seed=i)) for i, k in enumerate(n)]
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(clips) + "\n")
    script = tmp_path / "run_auhm.py"
    out = tmp_path / "all.parquet"
    args = ["annotate", f"@{listing}", "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", "--batch-size", "4", "--device", "cpu", "--quiet"]

    gate, reached = tmp_path / "gate", tmp_path / "reached"  # the gate never opens: the run is killed there
    standin_script(script, setup=f"h.hold_after_first_video({str(gate)!r}, {str(reached)!r})")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), *args], env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while not reached.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode() if proc.poll() is not None else "not reached"
            time.sleep(0.02)
    finally:  # killed whatever happened: never an orphan left running
        workers = children(proc.pid)
        proc.kill()
        proc.wait()
    if Path("/proc/self/stat").exists():  # the tracking processes (truth landmarks fork) leave with the run they served
        assert workers
        assert not still_running(workers), "a tracking process outlived the killed run"
    parts = tmp_path / "all.parquet.parts"
    assert reached.read_text() == str(parts / "k0.parquet")
    assert sorted(p.name for p in parts.iterdir() if not p.name.startswith(".")) == ["k0.parquet"] and not out.exists()

    standin_script(script)
    rerun = subprocess.run([sys.executable, str(script), *args[:-1]], env=env, capture_output=True, text=True, timeout=60)  # not quiet
    assert rerun.returncode == 0, rerun.stderr
    assert "another run" not in rerun.stderr  # the killed run's lock went with its process
    assert "1 video(s) already done the same way, skipped" in rerun.stderr  # the part the killed run finished
    df = pd.read_parquet(out)
    assert df.groupby("video").size().reindex(clips).tolist() == n
    assert not df.duplicated(["video", "frame"]).any()
    assert not parts.exists()
    assert read_metadata(out)["landmark_backend"] == "truth"


def test_a_single_output_file_keeps_its_videos_adds_new_ones_and_skips_done_ones(tmp_path):
    """A real (small, untrained) checkpoint; the second run into the finished file is a process of its own."""
    from auhm.infer.annotate import annotate

    ckpt = small_checkpoint(tmp_path / "m.pt")
    a, b, c = (str(make_clip(tmp_path, name, 6 + k, np.ones(6 + k, bool), seed=k)) for k, name in enumerate("abc"))
    out = tmp_path / "z.parquet"
    annotate([a, b], annotate_config(ckpt, out))
    first = pd.read_parquet(out)
    done = subprocess.run([sys.executable, "-m", "auhm", "annotate", a, c, "--model", str(ckpt), "--out", str(out),
                           "--landmarks", "truth", "--device", "cpu", "--precision", "fp32"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "1 video(s) already done the same way, skipped" in done.stderr
    assert f"1 video(s), 8 frames written, 1 already done, 0 failed → {out} (3 video(s) in it)" in done.stderr
    second = pd.read_parquet(out)
    assert second.groupby("video", sort=False).size().to_dict() == {a: 6, b: 7, c: 8}  # b kept, a not redone, c added
    pd.testing.assert_frame_equal(second[second.video != c].reset_index(drop=True), first)
    assert not (tmp_path / "z.parquet.parts").exists()


def test_only_overwrite_replaces_a_single_output_file(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate

    a, b = (str(make_clip(tmp_path, name, 5, np.ones(5, bool), seed=k)) for k, name in enumerate("ab"))
    out = tmp_path / "z.parquet"
    annotate([a, b], annotate_config(checkpoint, out))
    again = annotate([b], annotate_config(checkpoint, out))
    assert again.skipped == [b] and again.videos_held == 2
    replaced = annotate([b], annotate_config(checkpoint, out, overwrite=True))
    assert replaced.written == [b] and pd.read_parquet(out).video.unique().tolist() == [b]


def test_a_second_run_on_the_same_output_waits_for_the_first_and_nothing_is_lost(tmp_path, checkpoint):
    """Two real processes into one --out: the second waits for the first's lock, then adds its video."""
    clips = [str(make_clip(tmp_path, f"w{k}", 10 + k, np.ones(10 + k, bool), seed=k)) for k in range(3)]
    out = tmp_path / "z.parquet"
    gate = tmp_path / "gate"
    first, second = standin_script(tmp_path / "first.py", f"h.GatedAU({str(gate)!r})"), standin_script(tmp_path / "second.py")
    args = ["--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", "--batch-size", "4", "--device", "cpu"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    logs = [open(tmp_path / f"log{k}", "w+") for k in range(2)]
    runs = [subprocess.Popen([sys.executable, str(first), "annotate", *clips[:2], *args], env=env, stderr=logs[0])]
    try:
        deadline = time.time() + 60
        while "annotate: 2 video(s)" not in (tmp_path / "log0").read_text():  # said once it holds the lock; then it sits at its first batch
            assert runs[0].poll() is None and time.time() < deadline, (tmp_path / "log0").read_text()
            time.sleep(0.02)
        runs.append(subprocess.Popen([sys.executable, str(second), "annotate", clips[2], *args], env=env, stderr=logs[1]))
        while "another run is writing" not in (tmp_path / "log1").read_text():
            assert runs[1].poll() is None and time.time() < deadline, (tmp_path / "log1").read_text()
            time.sleep(0.02)
        assert not out.exists() and runs[0].poll() is None
        gate.write_text("go")
        assert [r.wait(timeout=60) for r in runs] == [0, 0], [(tmp_path / f"log{k}").read_text()[-2000:] for k in range(2)]
    finally:  # an assertion before the gate opened: open it, and end the runs
        gate.write_text("go")
        for r in runs:
            if r.poll() is None:
                r.kill()
                r.wait()
    df = pd.read_parquet(out)
    assert df.groupby("video", sort=False).size().to_dict() == {clips[0]: 10, clips[1]: 11, clips[2]: 12}
    assert not df.duplicated(["video", "frame"]).any()


def test_resume_keys_on_every_setting_that_changes_the_rows_and_says_which_differs(tmp_path, checkpoint, standin, monkeypatch):
    from typer.testing import CliRunner

    from auhm.cli import app
    from auhm.infer.output import made_differently

    clips = [str(make_clip(tmp_path, n, 6, np.ones(6, bool), seed=k)) for k, n in enumerate("pq")]
    out = tmp_path / "dir"

    def run(*extra):
        res = CliRunner().invoke(app, ["annotate", *clips, "--model", str(checkpoint), "--out", str(out), "--per-video",
                                       "--device", "cpu", "--batch-size", "4", *extra])
        assert res.exit_code == 0, res.output
        return res.output

    run("--landmarks", "truth")
    assert "2 already done" in run("--landmarks", "truth")
    assert "redoing 2 video(s) made with other settings (--faces all → largest)" in run("--landmarks", "truth", "--faces", "largest")
    assert "redoing 2 video(s) made with other settings (tracking" in run("--landmarks", "truth", "--faces", "largest", "--max-gap", "2")
    from auhm.face.detectors import HogDetector

    with monkeypatch.context() as other_rules:  # the same options under another auhm's rules (here HOG's candidates)
        other_rules.setattr(HogDetector, "CANDIDATES", {"threshold": -0.3})
        assert "redoing 2 video(s) made with other settings (tracking" in run("--landmarks", "truth", "--faces", "largest", "--max-gap", "2")
    older = {"checkpoint": "a" * 64, "landmark_backend": "truth", "landmark_model": None, "every": 1}  # before --faces: the largest face
    assert made_differently(older, {**older, "faces": "all"}) == "--faces largest → all"
    from auhm.infer.sources import dlib_available

    if not dlib_available():
        return  # the rest needs dlib's predictor
    log = run("--landmarks", "dlib")
    assert "redoing 2 video(s) made with other settings (landmarks truth → dlib" in log and "0 already done" in log
    assert read_metadata(out / "p.parquet")["landmark_backend"] == "dlib"
    log = run("--landmarks", "dlib", "--every", "2")
    assert "redoing 2 video(s) made with other settings (--every 1 → 2)" in log
    assert pd.read_parquet(out / "p.parquet").frame.tolist() == [0, 2, 4]
    was = {"checkpoint": "a" * 64, "landmark_backend": "auhm", "landmark_model": "b" * 64, "every": 1}
    assert made_differently(was, {**was, "landmark_model": "c" * 64}) == "landmark model bbbbbbbbbbbb → cccccccccccc"
    # "auhm", the network backend's earlier name, is the same backend
    assert made_differently(was, {**was, "landmark_backend": "network"}) is None
    assert made_differently({**was, "landmark_backend": "backbone+auhm"}, {**was, "landmark_backend": "backbone+network"}) is None
    assert made_differently(was, {**was, "landmark_backend": "dlib"}) == "landmarks network → dlib"
    assert made_differently(was, dict(was)) is None


def test_a_truncated_video_is_reported_as_incomplete_with_both_counts_and_keeps_its_rows(tmp_path, checkpoint, standin):
    from typer.testing import CliRunner

    from auhm.cli import app

    cut = write_truncated_video(tmp_path / "cut.mp4", n=60, keep=0.8)
    side = tmp_path / "auhm_truth"
    side.mkdir()
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    ring = {**{f"x_{k}": 48 + 15 * np.cos(t[k]) for k in range(68)}, **{f"y_{k}": 32 + 15 * np.sin(t[k]) for k in range(68)}}
    pd.DataFrame([{"frame": i, **ring} for i in range(60)]).to_parquet(side / "cut.parquet")
    good = make_clip(tmp_path, "good", 5, np.ones(5, bool))
    out = tmp_path / "z.parquet"
    args = ["annotate", str(cut), str(good), "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", "--device", "cpu"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    df = pd.read_parquet(out)
    rows = int((df.video == str(cut)).sum())
    assert 10 < rows < 56 and (df.video == str(good)).sum() == 5
    assert "2 video(s), " in res.output and "1 incomplete, 0 failed" in res.output
    assert f"error {cut}: incomplete, decoded {rows} of the 60 frames its container claims (the frames decoded are kept)" in res.output
    again = CliRunner().invoke(app, args)  # done, but still incomplete: said again
    assert again.exit_code == 1 and "2 already done" in again.output and "from an earlier run" in again.output


def test_an_output_that_cannot_be_written_is_a_usage_error_before_any_work(tmp_path, checkpoint, standin):
    from typer.testing import CliRunner

    from auhm.cli import app

    clip = make_clip(tmp_path, "c", 4, np.ones(4, bool))
    (tmp_path / "file").write_text("a file where a folder should be")
    for out, extra in ((tmp_path / "file" / "z.parquet", []), (tmp_path / "file" / "dir", ["--per-video"])):
        res = CliRunner().invoke(app, ["annotate", str(clip), "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", *extra])
        assert res.exit_code == 2, res.output
        assert res.output.strip() == f"usage error --out {out}: {tmp_path / 'file'} is a file, not a folder"


def test_inputs_that_name_no_video_are_named_and_failing_inputs_write_nothing(tmp_path, checkpoint, standin):
    from typer.testing import CliRunner

    from auhm.cli import app

    good = make_clip(tmp_path, "good", 4, np.ones(4, bool))
    (tmp_path / "empty").mkdir()
    (tmp_path / "bad.mp4").write_bytes(b"not a video" * 40)
    out = tmp_path / "z.parquet"

    def run(*inputs, extra=()):
        return CliRunner().invoke(app, ["annotate", *map(str, inputs), "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", *extra])

    res = run(good, tmp_path / "empty")
    assert res.exit_code == 1 and f"error {tmp_path / 'empty'}: no video files in this folder" in res.output
    alone = run(tmp_path / "empty", tmp_path / "none*.avi")
    assert alone.exit_code == 2 and f"{tmp_path / 'empty'}: no video files in this folder" in alone.output
    assert f"{tmp_path / 'none*.avi'}: matches no file" in alone.output
    before = out.read_bytes()
    failed = run(tmp_path / "bad.mp4", tmp_path / "gone.mp4")  # every input fails: the file stays as it was
    assert failed.exit_code == 1 and out.read_bytes() == before
    out.unlink()
    assert run(tmp_path / "bad.mp4").exit_code == 1 and not out.exists()  # nothing at all: no 0-row file
    assert not (tmp_path / "z.parquet.parts").exists()
    out = tmp_path / "dir"
    assert run(tmp_path / "bad.mp4", extra=["--per-video"]).exit_code == 1 and not out.exists()


def test_every_kth_frame(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate

    clip = make_clip(tmp_path, "e", 10, np.ones(10, bool))
    cfg = annotate_config(checkpoint, tmp_path / "e.parquet")
    cfg.every = 3
    annotate([str(clip)], cfg)
    assert pd.read_parquet(tmp_path / "e.parquet").frame.tolist() == [0, 3, 6, 9]


def test_usage_errors(tmp_path, checkpoint):
    from auhm.errors import UsageError
    from auhm.infer.annotate import annotate

    with pytest.raises(UsageError, match="no such checkpoint"):
        annotate(["x.mp4"], annotate_config(tmp_path / "missing.pt", tmp_path / "o.parquet"))
    with pytest.raises(UsageError, match="--per-video"):
        annotate(["x.mp4"], annotate_config(checkpoint, tmp_path / "o.parquet", per_video=True))



def test_an_unusable_landmark_backend_is_a_usage_error_before_any_row(tmp_path, checkpoint, standin):
    import dataclasses

    from auhm.errors import UsageError
    from auhm.infer.annotate import annotate

    clip = make_clip(tmp_path, "c", 6, np.ones(6, bool))
    out = tmp_path / "o.parquet"
    with pytest.raises(UsageError, match="--landmarks auhm needs --landmark-model"):
        annotate([str(clip)], dataclasses.replace(annotate_config(checkpoint, out), landmarks="auhm"))
    with pytest.raises(UsageError, match=r"--landmarks nope: choose one of auto, dlib, fan, network, truth"):
        annotate([str(clip)], dataclasses.replace(annotate_config(checkpoint, out), landmarks="nope"))
    assert not out.exists()


def test_a_backend_that_cannot_load_stops_the_run_before_its_first_progress_line(tmp_path):
    """The CLI: a landmark model of the wrong kind is one usage error line, nothing before it."""
    from typer.testing import CliRunner
    from auhm.cli import app

    au = small_checkpoint(tmp_path / "au.pt")
    clip = make_clip(tmp_path, "c", 6, np.ones(6, bool))
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(app, ["annotate", str(clip), "--model", str(au), "--landmarks", "network", "--landmark-model", str(au),
                                   "--out", str(out), "--device", "cpu"])
    assert res.exit_code == 2, res.output
    assert res.output.strip() == (f"usage error --landmarks network: {au}: an AU checkpoint (method 'scratch'), "
                                  "where a landmark checkpoint is needed (one from `auhm train --task landmarks`)")
    assert not out.exists()
    lm = tmp_path / "lm.pt"
    from auhm.models import build_model, save_checkpoint

    save_checkpoint(lm, build_model("landmarks", preset="small"), {"task": "landmarks"})
    res = CliRunner().invoke(app, ["annotate", str(clip), "--model", str(lm), "--out", str(out), "--landmarks", "truth", "--device", "cpu"])
    assert res.exit_code == 2 and res.output.strip() == (
        f"usage error {lm}: a landmark checkpoint (method 'landmarks'), where an AU checkpoint is needed (one from `auhm train`)")


@pytest.mark.parametrize("name", ["single_face.mp4", "no_face.mp4", "face_noface.mov", "WolfgangLanger_Pexels.mp4"])
def test_real_media_rows_equal_decoded_frames(media, tmp_path, checkpoint, standin, name):
    """With dlib tracking: one row per decoded frame; no face → null AUs."""
    from auhm.infer.annotate import annotate
    from auhm.infer.sources import dlib_available

    if not dlib_available():
        pytest.skip("dlib is not installed")
    video = media / name
    decoded = sum(len(b) for b in VideoReader(video).batches(64))
    cfg = annotate_config(checkpoint, tmp_path / "m.parquet")
    cfg.landmarks = "dlib"
    if name == "WolfgangLanger_Pexels.mp4":
        cfg.every = 4  # keep the test fast: every 4th frame
        decoded = len(range(0, decoded, 4))
    res = annotate([str(video)], cfg)
    df = pd.read_parquet(tmp_path / "m.parquet")
    assert not res.failures and not res.incomplete and len(df) == decoded == res.frames  # no_face.mp4: 95 of 98 is not a loss
    assert df.loc[~df.success, ["AU01", "AU02", "AU12"]].isna().all().all()
    if name == "no_face.mp4":
        assert not df.success.any()
    if name == "single_face.mp4":
        assert df.success.mean() > 0.9


def test_more_than_one_face_is_counted_in_the_metadata_and_the_summary(media, tmp_path, checkpoint, standin):
    from typer.testing import CliRunner

    from auhm.cli import app
    from auhm.infer.sources import dlib_available

    if not dlib_available():
        pytest.skip("dlib is not installed")
    image, single = media / "multi_face.jpg", media / "single_face.jpg"
    out = tmp_path / "m.parquet"
    res = CliRunner().invoke(app, ["annotate", str(image), str(single), "--model", str(checkpoint), "--out", str(out), "--landmarks", "dlib",
                                   "--faces", "largest"])
    assert res.exit_code == 0, res.output
    meta = read_metadata(out)
    seen = meta["videos"][str(image)]["faces_seen"]
    assert seen >= 2 and meta["videos"][str(single)]["faces_seen"] == 1
    assert "largest" in meta["face_followed"]
    assert f"{image}: {seen} faces seen; one row per frame, for the largest" in res.output
    assert str(single) + ":" not in res.output
    df = pd.read_parquet(out)
    assert len(df) == 2 and df.success.all()
    # every face (the default): one row per face found, ids 0 … n-1, the photo's faces all there
    every = tmp_path / "all.parquet"
    res = CliRunner().invoke(app, ["annotate", str(image), str(single), "--model", str(checkpoint), "--out", str(every), "--landmarks", "dlib"])
    assert res.exit_code == 0, res.output
    df = pd.read_parquet(every)
    photo = df[df.video == str(image)]
    assert photo.success.all() and sorted(photo.face) == list(range(len(photo))) and len(photo) == read_metadata(every)["videos"][str(image)]["tracks"]
    assert len(photo) >= min(seen, 4) and (df.video == str(single)).sum() == 1


def test_ray_engine_writes_the_same_per_video_files(tmp_path):
    """A local 2-CPU Ray instance, a real (small, untrained) checkpoint: same rows as the local engine."""
    ray = pytest.importorskip("ray")
    from auhm.infer.annotate import annotate

    ckpt = small_checkpoint(tmp_path / "m.pt")
    clips = [str(make_clip(tmp_path, n, k, np.arange(k) % 4 != 1, seed=k)) for n, k in (("r1", 9), ("r2", 6))]
    broken = tmp_path / "broken.avi"
    broken.write_bytes(b"RIFF" + b"\x00" * 200)
    cfg = annotate_config(ckpt, tmp_path / "ray", per_video=True, workers=2, engine="ray")
    try:
        res = annotate([*clips, str(broken)], cfg)
    finally:
        ray.shutdown()
    assert res.written == clips and [f.path for f in res.failures] == [str(broken)]
    local = annotate(clips, annotate_config(ckpt, tmp_path / "local", per_video=True))
    for name in ("r1.parquet", "r2.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "ray" / name), pd.read_parquet(tmp_path / "local" / name), atol=1e-5)
    assert local.frames == res.frames == 15


# ── tracking with the AU model's own backbone landmarks (--landmarks auto, transfer methods) ──
def test_self_tracking_follows_the_face_with_one_detection(tmp_path):
    from auhm.infer.engine import run_jobs
    from auhm.infer.output import VideoJob
    from auhm.infer.predictor import Predictor
    from auhm.infer.backbone import BackboneBackend
    from auhm.infer.sources import FaceSource

    n, w, h = 30, 160, 96
    path = tmp_path / "move.avi"
    truth = []
    with VideoWriter(path, 10.0, w, h) as vw:
        for i in range(n):
            f = np.full((h, w, 3), 30, np.uint8)
            if i < 25:  # the face leaves for the last 5 frames
                x0 = 20 + 3 * i
                f[30:66, x0 : x0 + 36] = 230
                truth.append([x0, 30, x0 + 35, 65])
            vw.write(f)
    info = {**INFO, "method": "adaptation", "input_size": TRACK_SIZE}
    predictor = Predictor(SquareAU(), info, "cpu", "fp32")
    assert predictor.has_landmarks
    for faces in ("all", "largest"):
        SquareBackend.detections = 0
        source = FaceSource("backbone+square", lambda: BackboneBackend(predictor, square_detector(), 0.3), self_tracking=True, faces=faces)
        cfg = annotate_config(tmp_path / "unused.pt", tmp_path / faces, per_video=True)
        cfg.batch_size = 4
        written, failures, rows = run_jobs([VideoJob(str(path), tmp_path / faces / "move.parquet")], predictor, source, {"checkpoint": "x", "every": 1}, cfg)
        df = pd.read_parquet(tmp_path / faces / "move.parquet")
        assert rows == n and df.frame.tolist() == list(range(n))
        assert df.success.tolist() == [True] * 25 + [False] * 5
        assert df.loc[~df.success, ["AU01", "x0", "face"]].isna().all().all() and (df.face[df.success] == 0).all()
        # The crops followed the moving square (crops cut from the last landmarks were re-cut and re-scored).
        np.testing.assert_allclose(df.loc[df.success, ["x0", "y0", "x1", "y1"]].to_numpy(), np.array(truth), atol=2)
        notes = read_metadata(tmp_path / faces / "move.parquet")["notes"]
        assert notes["frames_without_face"] == 5 and notes["longest_gap"] == 5 and notes["frames"] == n
    # every face: one detection on frame 0, then on the schedule (the last of every 16 frames) and at the loss
    assert SquareBackend.detections <= 1 + 2 * 5


def test_cli_exit_code_1_when_one_input_is_broken(tmp_path):
    """The real CLI and a real (small, untrained) checkpoint: exit 1, the good videos written."""
    from typer.testing import CliRunner
    from auhm.cli import app

    ckpt = small_checkpoint(tmp_path / "m.pt")
    good = make_clip(tmp_path, "fine", 7, np.ones(7, bool))
    (tmp_path / "bad.mp4").write_bytes(b"garbage" * 50)
    out = tmp_path / "pred.parquet"
    args = ["annotate", str(tmp_path / "*.*"), "--model", str(ckpt), "--out", str(out), "--landmarks", "truth", "--device", "cpu", "-q"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 1, res.output
    assert "bad.mp4" in res.output and "fine.avi" not in res.output.split("error")[-1]
    df = pd.read_parquet(out)
    assert df.video.unique().tolist() == [str(good)] and len(df) == 7
    assert CliRunner().invoke(app, ["annotate", str(good), "--model", str(tmp_path / "nope.pt")]).exit_code == 2


def test_cli_with_progress_bar_and_tracking_processes_finishes(tmp_path):
    """Not quiet, forked tracking processes, the real CLI in a subprocess with a timeout (a hang
    fails the test instead of stalling the suite)."""
    ckpt = small_checkpoint(tmp_path / "m.pt")
    clips = [str(make_clip(tmp_path, f"v{k}", 9, np.ones(9, bool), seed=k, still_end=3)) for k in range(4)]
    out = tmp_path / "pred.parquet"
    cmd = [sys.executable, "-m", "auhm", "annotate", *clips, "--model", str(ckpt), "--out", str(out),
           "--landmarks", "truth", "--device", "cpu", "--workers", "2"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert len(pd.read_parquet(out)) == 36


def test_the_frame_count_thread_starts_only_after_the_tracking_processes_fork(tmp_path, checkpoint, standin, monkeypatch):
    """The progress total is counted in a thread that opens every container; running while the
    tracking processes fork, it could hold a lock (an import's) that the children would then wait
    on forever. Here each count waits until the fork is over: a thread started before the fork
    would be seen running at it."""
    from auhm.infer import annotate as mod
    from auhm.infer.workers import TrackingWorkers

    forked, running_at_fork, counted = threading.Event(), [], []
    start, claimed = TrackingWorkers.start, mod._claimed_frames

    def start_and_look(self):
        running_at_fork.extend(t.name for t in threading.enumerate())
        start(self)
        forked.set()

    def claimed_after_the_fork(video):
        forked.wait(timeout=30)
        counted.append(forked.is_set())
        return claimed(video)

    monkeypatch.setattr(TrackingWorkers, "start", start_and_look)
    monkeypatch.setattr(mod, "_claimed_frames", claimed_after_the_fork)
    clips = [str(make_clip(tmp_path, f"v{k}", 5, np.ones(5, bool), seed=k)) for k in range(3)]
    cfg = annotate_config(checkpoint, tmp_path / "pred.parquet", workers=2, quiet=False)
    assert mod.annotate(clips, cfg).frames == 15
    assert running_at_fork and "auhm-count" not in running_at_fork
    assert counted == [True] * 3


def test_auto_landmarks_choice(tmp_path):
    from auhm.infer.annotate import AnnotateConfig
    from auhm.infer.predictor import Predictor
    from auhm.face.detectors import find_detector
    from auhm.infer.sources import dlib_available, face_source
    from auhm.models import build_model

    if not dlib_available():
        pytest.skip("dlib is not installed")
    cfg = AnnotateConfig(model=tmp_path / "m.pt")
    scratch = Predictor(build_model("scratch", AUS, preset="small"), {"aus": AUS, "method": "scratch"}, "cpu", "fp32")
    assert not scratch.has_landmarks and face_source(cfg, scratch).name == "dlib"
    adaptation = Predictor(build_model("adaptation", AUS, preset="small"), {"aus": AUS, "method": "adaptation"}, "cpu", "fp32")
    source = face_source(cfg, adaptation)
    assert adaptation.has_landmarks and source.self_tracking and source.name == f"backbone+{find_detector()}"


def test_detector_option_names_an_installed_detector_and_picks_the_self_tracking_search(tmp_path, monkeypatch):
    from auhm.errors import UsageError
    from auhm.face import detectors
    from auhm.infer.annotate import AnnotateConfig
    from auhm.infer.predictor import Predictor
    from auhm.infer.sources import face_source
    from auhm.models import build_model

    (tmp_path / "m.pt").write_bytes(b"a checkpoint is read later")
    with pytest.raises(UsageError, match="--detector nope: choose one of dlib, opencv, dlib-cnn, mtcnn"):
        AnnotateConfig(model=tmp_path / "m.pt", out=tmp_path / "p.parquet", detector="nope").check()
    monkeypatch.setattr(detectors, "available", lambda name: name != "dlib-cnn")
    with pytest.raises(UsageError, match="--detector dlib-cnn is not installed here: pip install"):
        AnnotateConfig(model=tmp_path / "m.pt", out=tmp_path / "p.parquet", detector="dlib-cnn").check()
    with pytest.raises(UsageError, match="--detector is for --landmarks auto"):
        AnnotateConfig(model=tmp_path / "m.pt", out=tmp_path / "p.parquet", detector="mtcnn", landmarks="dlib").check()
    cfg = AnnotateConfig(model=tmp_path / "m.pt", out=tmp_path / "p.parquet", detector="mtcnn")
    cfg.check()
    adaptation = Predictor(build_model("adaptation", AUS, preset="small"), {"aus": AUS, "method": "adaptation"}, "cpu", "fp32")
    assert face_source(cfg, adaptation).name == "backbone+mtcnn"  # the metadata's landmark_backend: part of the resume key
    if detectors.REGISTRY.get("dlib").available():  # every face: HOG's low scorers too, the tracker confirms them; the largest: not
        for faces, threshold in (("all", -0.8), ("largest", 0.0)):
            hog = AnnotateConfig(model=tmp_path / "m.pt", out=tmp_path / "p.parquet", detector="dlib", faces=faces)
            backend = face_source(hog, adaptation).make_backend()
            assert backend.detector.threshold == threshold and backend.sure_score == 0.5  # under HOG's own threshold: unsure


def test_tracking_workers_default_to_one_on_a_cpu_and_the_spare_cores_beside_a_gpu(monkeypatch):
    from auhm.infer.workers import tracking_workers

    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert tracking_workers(None, cpu) == 1  # the cores run the model lanes
    assert tracking_workers(None, cpu, self_tracking=True) == torch.get_num_threads() and tracking_workers(None, gpu, self_tracking=True) == 4
    assert tracking_workers(3, cpu) == 3 and tracking_workers(3, gpu) == 3
    monkeypatch.setattr(os, "cpu_count", lambda: 16)
    assert tracking_workers(None, gpu) == 15
    assert tracking_workers(None, gpu, processes=False) == 4  # threads share one GIL
    monkeypatch.setattr(os, "cpu_count", lambda: 1)
    assert tracking_workers(None, gpu) == 1


def test_stub_model_path(tmp_path, checkpoint):
    """bench/annotate.py --model-stub: the stand-in gives its fixed intensities on every face
    frame, one row per frame; with self-tracking its fixed landmarks hold each crop where it was
    cut, so each frame is scored exactly once (no re-cut) after one detection."""
    import auhm.face.detectors as detectors
    import auhm.landmarks

    from auhm.infer.annotate import annotate
    from auhm.infer.predictor import StubPredictor

    face = np.arange(20) % 6 != 4
    clip = make_clip(tmp_path, "s", 20, face)
    stub = StubPredictor(aus=AUS, input_size=SIZE, landmarks=False)
    res = annotate([str(clip)], annotate_config(checkpoint, tmp_path / "truth.parquet"), predictor=stub)
    df = pd.read_parquet(tmp_path / "truth.parquet")
    assert res.frames == 20 and df.success.tolist() == face.tolist()
    fixed = stub(np.zeros((1, SIZE, SIZE, 3), np.uint8)).intensities
    np.testing.assert_array_equal(df.loc[df.success, ["AU01", "AU02", "AU12"]].to_numpy(), np.repeat(fixed, face.sum(), 0))

    scored, searches = [], []

    class Counted(StubPredictor):
        def __call__(self, crops, keep_heatmaps=False):
            scored.append(len(crops))
            return super().__call__(crops, keep_heatmaps)

    square_clip(tmp_path / "sq.avi", 30, lambda i: True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(detectors, "find_detector", lambda: "opencv")
        mp.setattr(detectors, "make_detector", lambda name, **options: (lambda frame: searches.append(1) or SquareBackend().detect(frame[None])[0]))
        mp.setattr(auhm.landmarks, "make_backend", lambda name, **kw: SquareBackend())
        cfg = annotate_config(checkpoint, tmp_path / "auto.parquet", workers=1)
        cfg.landmarks, cfg.faces = "auto", "largest"  # the stub's landmarks stay put while the square moves: one face only
        res = annotate([str(tmp_path / "sq.avi")], cfg, predictor=Counted(aus=AUS, input_size=TRACK_SIZE))
    df = pd.read_parquet(tmp_path / "auto.parquet")
    assert res.landmark_backend == "backbone+opencv" and df.success.all() and len(df) == 30
    assert sum(scored) == 30  # each frame once: nothing drifted, nothing re-cut


def test_same_file_stem_in_two_folders_keeps_both_videos(tmp_path, checkpoint, standin):
    """a/clip.avi and b/clip.avi: two tables (per video) or both videos' rows (one file), none overwritten."""
    from auhm.infer.annotate import annotate

    clips = []
    for folder, n in (("a", 7), ("b", 11)):
        (tmp_path / folder).mkdir()
        clips.append(str(make_clip(tmp_path / folder, "clip", n, np.ones(n, bool), seed=n)))
    res = annotate(clips, annotate_config(checkpoint, tmp_path / "dir", per_video=True))
    files = sorted((tmp_path / "dir").glob("*.parquet"))
    assert res.written == clips and len(files) == 2
    assert sorted(len(pd.read_parquet(f)) for f in files) == [7, 11]
    assert sorted(read_metadata(f)["video"] for f in files) == sorted(clips)
    annotate(clips, annotate_config(checkpoint, tmp_path / "one.parquet"))
    assert pd.read_parquet(tmp_path / "one.parquet").groupby("video").size().reindex(clips).tolist() == [7, 11]


def test_single_file_resume_shortcut(tmp_path, checkpoint, standin, monkeypatch):
    """Every video already in the finished file, made the same way: nothing is loaded or rewritten."""
    import auhm.landmarks
    from auhm.infer.annotate import annotate

    clips = [str(make_clip(tmp_path, n, 6, np.ones(6, bool))) for n in ("u", "v")]
    out = tmp_path / "z.parquet"
    annotate(clips, annotate_config(checkpoint, out))
    before = out.stat().st_mtime_ns
    made = []
    real = auhm.landmarks.make_backend
    monkeypatch.setattr(auhm.landmarks, "make_backend", lambda *a, **k: made.append(a[0]) or real(*a, **k))
    again = annotate(clips[::-1], annotate_config(checkpoint, out))
    assert again.skipped == clips[::-1] and again.written == [] and made == []
    assert out.stat().st_mtime_ns == before and len(pd.read_parquet(out)) == 12


@pytest.mark.parametrize("metrics, warned", [({"val_icc": 0.004, "val_spread": 0.01}, True), ({"val_icc": 0.41, "val_spread": 0.7}, False)])
def test_a_checkpoint_whose_validation_says_it_learned_nothing_is_warned_of_once(tmp_path, checkpoint, monkeypatch, capsys, metrics, warned):
    from auhm.infer.annotate import annotate
    from auhm.infer.predictor import Predictor

    info = {**INFO, "task": "au", "metrics": metrics}
    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, path, device="auto", precision="auto": cls(StandInAU(), info, "cpu", precision)))
    clip = make_clip(tmp_path, "a", 6, np.ones(6, bool))
    res = annotate([str(clip)], annotate_config(checkpoint, tmp_path / "pred.parquet"))
    assert res.frames == 6  # a warning, not a refusal: the rows are written
    err = capsys.readouterr().err
    assert err.count("did not learn") == (1 if warned else 0)


def test_face_gaps_count_runs_without_a_face_across_chunks():
    """FaceGaps against a plain count over the whole video, the flags cut into random chunks."""
    import itertools

    from auhm.infer.engine import FaceGaps

    rng = np.random.default_rng(5)
    for trial in range(50):
        flags = rng.random(rng.integers(0, 60)) < rng.choice([0.2, 0.5, 0.9])
        cuts = np.sort(rng.integers(0, len(flags) + 1, rng.integers(0, 6)))
        gaps = FaceGaps()
        for chunk in np.split(flags, cuts):
            gaps.add(chunk)
        runs = [len(list(g)) for has, g in itertools.groupby(flags) if not has]
        assert gaps.notes() == {"frames": len(flags), "frames_without_face": int((~flags).sum()),
                                "longest_gap": max(runs, default=0)}, (trial, flags, cuts)


def test_tracks_joined_at_a_videos_end_rename_its_face_ids_in_annotates_and_landmarks_tables(tmp_path, checkpoint, standin, monkeypatch):
    """Whatever the tracker says at a video's end (here: its two first ids swapped, and one row of
    id 0 handed to another id) is what both tables hold, every row of an id renamed, with the
    notes' count of tracks; nothing else moves."""
    from auhm.face.multitrack import MultiTracker
    from auhm.infer.annotate import annotate
    from auhm.landmarks.job import LandmarksConfig, extract_landmarks
    from auhm.synth import SynthConfig, make_corpus

    make_corpus(SynthConfig(tmp_path / "crowd", subjects=1, seed=0, layout="crowd", frames=24, width=320, height=180, fps=10.0,
                            contact_sheet=False), quiet=True)
    video = str(tmp_path / "crowd" / "videos" / "crowd000.mp4")
    truth = tmp_path / "crowd" / "auhm_truth" / "crowd000.parquet"
    plain = pd.read_parquet(annotate([video], annotate_config(checkpoint, tmp_path / "plain.parquet")).out)
    plain_lm = pd.read_parquet(extract_landmarks([video], tmp_path / "plain_lm.parquet", LandmarksConfig(backend="truth", truth=truth, quiet=True)).out)
    assert {0, 1} <= set(plain.face.dropna())
    swap = {0: 1, 1: 0}
    first = int(plain.frame[plain.face == 0].min())  # id 0's row there handed to a new id 7 (a fit that slid), the others swapped
    monkeypatch.setattr(MultiTracker, "people", lambda self: People({face: swap.get(face, face) for face in self._written.records}, {0: {first: 7}}))
    out = annotate([video], annotate_config(checkpoint, tmp_path / "joined.parquet")).out
    joined = pd.read_parquet(out)
    assert joined.face.dtype == plain.face.dtype
    expected = plain.face.map(lambda f: swap.get(f, f)).where(~((plain.face == 0) & (plain.frame == first)), 7)
    pd.testing.assert_series_equal(joined.face, expected, check_names=False, check_dtype=False)
    pd.testing.assert_frame_equal(joined.drop(columns="face"), plain.drop(columns="face"))
    assert read_metadata(out)["videos"][video]["tracks"] == plain.face.nunique()
    lm = pd.read_parquet(extract_landmarks([video], tmp_path / "joined_lm.parquet", LandmarksConfig(backend="truth", truth=truth, quiet=True)).out)
    expected_lm = plain_lm.face.map(lambda f: swap.get(f, f)).where(~((plain_lm.face == 0) & (plain_lm.frame == first)), 7)
    pd.testing.assert_series_equal(lm.face, expected_lm, check_names=False, check_dtype=False)
