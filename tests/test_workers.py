"""The seams of a local annotation run: the same rows whatever the timing, per-worker state,
a prompt stop on Ctrl-C or SIGTERM, the run's device handed to every backend, one way of
annotating per --per-video folder."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from auhm.errors import UsageError
from auhm.io import read_metadata

from helpers import INFO, TRACK_SIZE, SquareAU, SquareBackend, annotate_config, make_clip, small_checkpoint, square_clip, standin_script


@pytest.fixture
def squares(monkeypatch):
    """A world of bright squares tracked by the stand-in model's own landmarks (``auto``)."""
    import auhm.landmarks
    from auhm.face import detectors
    from auhm.infer.annotate import Predictor

    monkeypatch.setattr(auhm.landmarks, "make_backend", lambda name, **kw: SquareBackend())
    monkeypatch.setattr(detectors, "find_detector", lambda: "dlib")
    monkeypatch.setattr(detectors, "make_detector", lambda name, **options: (lambda frame, b=SquareBackend(): b.detect(frame[None])[0]))
    info = {**INFO, "method": "adaptation", "input_size": TRACK_SIZE}
    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, p, device="auto", precision="auto": cls(SquareAU(), info, "cpu", "fp32")))


def test_auto_gives_bit_identical_tables_whatever_the_timing(tmp_path, checkpoint, squares, monkeypatch):
    """Two runs of one command on three moving-square videos, two worker threads; in the second the
    model's forwards and the decoding are delayed at random. The tables are equal to the bit."""
    from auhm.infer.annotate import annotate
    from auhm.infer.predictor import Predictor
    from auhm.video import VideoReader

    clips = []
    for k in range(3):
        path = tmp_path / f"m{k}.avi"
        square_clip(path, 50, lambda i, k=k: not (18 + k <= i < 24 + k), x0=lambda i, k=k: 10 + (2 + k) * i)
        clips.append(str(path))
    cfg = dict(landmarks="auto", workers=2, batch_size=4)
    annotate(clips, annotate_config(checkpoint, tmp_path / "a.parquet", **cfg))

    jitter = random.Random(7)
    call, batches = Predictor.__call__, VideoReader.batches

    def slow_call(self, crops, keep_heatmaps=False):
        time.sleep(jitter.random() * 0.02)
        return call(self, crops, keep_heatmaps)

    def slow_batches(self, *a, **kw):
        for b in batches(self, *a, **kw):
            time.sleep(jitter.random() * 0.01)
            yield b

    monkeypatch.setattr(Predictor, "__call__", slow_call)
    monkeypatch.setattr(VideoReader, "batches", slow_batches)
    annotate(clips, annotate_config(checkpoint, tmp_path / "b.parquet", **cfg))
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    assert a.success.sum() > 100 and (~a.success).sum() >= 18
    pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_one_threads_backend_failing_mid_video_fails_that_video_only(tmp_path, checkpoint, standin, monkeypatch):
    """Two tracking threads (a backend that is not forkable); one raises on its video's second
    batch. Only that video is reported, once; every other is complete and written once."""
    import auhm.landmarks
    from auhm.face.truth_backend import TruthBackend
    from auhm.infer.annotate import annotate

    class BreaksOnBad(TruthBackend):
        def start(self, video):
            self.bad, self.batches = "bad" in video, 0
            super().start(video)

        def read(self, indices, timestamps):
            self.batches += 1
            if self.bad and self.batches == 2:  # its second chunk of 32 frames
                raise RuntimeError("backend broke")
            return super().read(indices, timestamps)

    monkeypatch.setattr(auhm.landmarks, "make_backend", lambda name, **kw: BreaksOnBad())
    monkeypatch.setattr(auhm.landmarks, "backend_spec", lambda name: type("Spec", (), {"forkable": False})())
    names = ["g0", "bad", "g1", "g2", "g3"]
    clips = [str(make_clip(tmp_path, n, 40, np.arange(40) % 7 != 3, seed=k)) for k, n in enumerate(names)]
    cfg = annotate_config(checkpoint, tmp_path / "o.parquet", workers=2, batch_size=4, faces="largest")
    res = annotate(clips, cfg)
    assert [f.path for f in res.failures] == [clips[1]] and "backend broke" in res.failures[0].reason
    assert sorted(res.written) == sorted(c for c in clips if "bad" not in c)
    df = pd.read_parquet(cfg.out)
    assert df.groupby("video").size().to_dict() == {c: 40 for c in clips if "bad" not in c}
    assert not df.duplicated(["video", "frame"]).any()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_stopped_run_exits_at_once_says_what_is_kept_and_resumes(tmp_path, checkpoint, sig):
    """Stopped while held just after its first video was committed: exits within about a second
    with 130, says what was kept and how to resume, leaves no tracking process behind; the re-run
    completes with nothing lost or doubled."""
    n = [24, 16, 20, 12]
    clips = [str(make_clip(tmp_path, f"s{i}", k, np.ones(k, bool), seed=i)) for i, k in enumerate(n)]
    out = tmp_path / "all.parquet"
    args = ["annotate", *clips, "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", "--batch-size", "4",
            "--device", "cpu", "--workers", "2", "--quiet"]
    gate, reached = tmp_path / "gate", tmp_path / "reached"
    script = standin_script(tmp_path / "run.py", setup=f"h.interruptible(); h.hold_after_first_video({str(gate)!r}, {str(reached)!r})")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), *args], env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while not reached.exists():
            assert proc.poll() is None and time.monotonic() < deadline, "the run never committed a video"
            time.sleep(0.02)
        sent = time.monotonic()
        if sig == signal.SIGINT:
            os.killpg(proc.pid, sig)  # Ctrl-C in a terminal: the whole process group, tracking processes too
        else:
            proc.send_signal(sig)
        _, err = proc.communicate(timeout=10)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert took < 2.5, took
    assert f"1 of 4 video(s) finished and kept in {out}.parts" in err and "run the same command again to resume" in err
    assert "Traceback" not in err
    left = subprocess.run(["pgrep", "-f", str(script)], capture_output=True, text=True)
    assert left.stdout.strip() == "", "a tracking process outlived the run"
    again = standin_script(tmp_path / "again.py")
    rerun = subprocess.run([sys.executable, str(again), *args], env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    df = pd.read_parquet(out)
    assert df.groupby("video").size().reindex(clips).tolist() == n and not df.duplicated(["video", "frame"]).any()


def test_the_runs_device_reaches_every_landmark_backend(tmp_path, checkpoint, standin, monkeypatch):
    """A backend factory that records the device it is built for: annotate (a tracker and the
    self-tracking fallback) and render hand it the run's device."""
    import auhm.landmarks
    from auhm.infer.annotate import annotate
    from auhm.infer.predictor import Predictor
    from auhm.infer.sources import face_source

    built = []

    def record(name, **kw):
        built.append((name, kw.get("device")))
        return SquareBackend()

    monkeypatch.setattr(auhm.landmarks, "make_backend", record)
    clip = make_clip(tmp_path, "d", 6, np.ones(6, bool))
    model = small_checkpoint(tmp_path / "lm.pt")  # any checkpoint: the recording factory never reads it
    cfg = annotate_config(checkpoint, tmp_path / "o.parquet", landmarks="network", landmark_model=model)
    annotate([str(clip)], cfg)
    assert built and all(device == "cpu" for _, device in built)
    built.clear()
    info = {**INFO, "method": "adaptation", "input_size": TRACK_SIZE}
    predictor = Predictor(SquareAU(), info, "cpu", "fp32")
    auto = annotate_config(checkpoint, tmp_path / "p.parquet", landmarks="auto", landmark_model=model)
    source = face_source(auto, predictor)
    assert source.fallback_tracker() is not None and built == [("network", "cpu")]


def test_a_per_video_folder_holds_one_way_of_annotating(tmp_path, checkpoint, standin):
    from auhm.infer.annotate import annotate

    a, b = (str(make_clip(tmp_path, n, 6, np.ones(6, bool), seed=k)) for k, n in enumerate("ab"))
    annotate([a], annotate_config(checkpoint, tmp_path / "dir", per_video=True))
    with pytest.raises(UsageError, match=r"holds a.parquet, made with other settings \(--faces all → largest\)"):
        annotate([b], annotate_config(checkpoint, tmp_path / "dir", per_video=True, faces="largest"))
    annotate([b], annotate_config(checkpoint, tmp_path / "dir", per_video=True))  # the same settings: added beside it
    res = annotate([a, b], annotate_config(checkpoint, tmp_path / "dir", per_video=True, faces="largest"))  # both redone: allowed
    assert sorted(res.written) == sorted([a, b])
    assert {read_metadata(tmp_path / "dir" / f"{n}.parquet")["faces"] for n in "ab"} == {"largest"}


def test_auto_with_a_landmark_model_records_it_and_redoes_when_it_changes(tmp_path, checkpoint, squares):
    from auhm.infer.annotate import annotate

    square_clip(tmp_path / "v.avi", 12, lambda i: True)
    models = [tmp_path / "lm1.pt", tmp_path / "lm2.pt"]
    for k, m in enumerate(models):
        m.write_bytes(bytes([k]) * 10)
    out = tmp_path / "o.parquet"
    annotate([str(tmp_path / "v.avi")], annotate_config(checkpoint, out, landmarks="auto", landmark_model=models[0]))
    assert read_metadata(out)["landmark_model"] is not None
    again = annotate([str(tmp_path / "v.avi")], annotate_config(checkpoint, out, landmarks="auto", landmark_model=models[0]))
    assert again.skipped == [str(tmp_path / "v.avi")]
    other = annotate([str(tmp_path / "v.avi")], annotate_config(checkpoint, out, landmarks="auto", landmark_model=models[1]))
    assert other.written == [str(tmp_path / "v.avi")]


def test_frames_without_a_face_are_counted_in_the_result_the_summary_and_the_file(tmp_path, checkpoint, standin):
    from typer.testing import CliRunner

    from auhm.cli import app

    face = np.ones(30, bool)
    face[[3, 10, 11, 12, 13, 20]] = False
    clip = make_clip(tmp_path, "g", 30, face)
    out = tmp_path / "o.parquet"
    res = CliRunner().invoke(app, ["annotate", str(clip), "--model", str(checkpoint), "--out", str(out), "--landmarks", "truth", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    from auhm.infer.annotate import annotate

    again = annotate([str(clip)], annotate_config(checkpoint, out))  # skipped: what the file says, in the result
    assert again.skipped == [str(clip)] and again.faces_seen == {str(clip): 1}
    assert again.no_face == {str(clip): {"frames": 30, "frames_without_face": 6, "longest_gap": 4}}
    assert f"{clip}: no face in 6 of 30 frames (longest gap 4 frames)" in res.output
    notes = read_metadata(out)["videos"][str(clip)]
    assert notes["frames_without_face"] == 6 and notes["longest_gap"] == 4 and notes["frames"] == 30


@pytest.mark.media
def test_two_real_people_keep_their_ids_through_a_hidden_stretch(media, tmp_path, checkpoint, standin):
    """Two real clips side by side, the right person hidden (flat grey) for 15 frames, longer than
    --max-gap (1 s at 10 fps): both found, each with one id before and after, no third id."""
    from auhm.infer.annotate import annotate
    from auhm.infer.sources import dlib_available

    from helpers import side_by_side_clip

    if not dlib_available():
        pytest.skip("dlib is not installed")
    clip = side_by_side_clip(media / "single_face.mp4", media / "WolfgangLanger_Pexels.mp4", tmp_path / "pair.mp4", hide=(20, 35))
    out = tmp_path / "pair.parquet"
    annotate([str(clip)], annotate_config(checkpoint, out, landmarks="dlib"))
    df = pd.read_parquet(out)
    faces = df[df.success]
    middle = (faces.x0 + faces.x1) / 2
    width = float(df.x1.max())
    left, right = faces[middle < width / 2], faces[middle >= width / 2]
    assert left.face.nunique() == 1 and right.face.nunique() == 1 and set(left.face) != set(right.face)
    assert faces.face.nunique() == 2
    hidden = right.frame.between(20, 34)
    assert not hidden.any() and (right.frame < 20).sum() >= 15 and (right.frame >= 35).sum() >= 30
    assert left.frame.nunique() >= 0.9 * df.frame.nunique()
