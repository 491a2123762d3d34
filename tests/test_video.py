import numpy as np
import pytest

from auhm.video import VideoError, VideoReader

from helpers import bar_frame, write_test_video, write_truncated_video


def test_generated_video_round_trip(tmp_path):
    for ext in (".avi", ".mp4"):
        p = write_test_video(tmp_path / f"v{ext}", n=30)
        r = VideoReader(p)
        batches = list(r.batches(batch_size=8))
        assert [len(b) for b in batches] == [8, 8, 8, 6]
        idx = np.concatenate([b.indices for b in batches])
        assert idx.tolist() == list(range(30))
        assert batches[0].frames.shape == (8, 64, 96, 3) and batches[0].frames.dtype == np.uint8
        ts = np.concatenate([b.timestamps for b in batches])
        np.testing.assert_allclose(ts, np.arange(30) / 10.0)


def test_every_keeps_every_kth_frame(small_video):
    idx = np.concatenate([b.indices for b in VideoReader(small_video).batches(5, every=4)])
    assert idx.tolist() == list(range(0, 24, 4))


def test_pyav_backend_matches_decord(small_video):
    a = np.concatenate([b.frames for b in VideoReader(small_video, backend="decord").batches(64)])
    b = np.concatenate([b.frames for b in VideoReader(small_video, backend="pyav").batches(64)])
    assert a.shape == b.shape
    assert np.abs(a.astype(int) - b.astype(int)).mean() < 2.0


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 100])
def test_broken_files_raise_video_error_naming_the_file(tmp_path, content):
    p = tmp_path / "broken.mp4"
    p.write_bytes(content)
    with pytest.raises(VideoError, match="broken.mp4"):
        list(VideoReader(p).batches())


def test_missing_file(tmp_path):
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "nope.mp4")


def test_truncated_video_yields_only_real_frames(tmp_path):
    """Cut after half its bytes, a video decodes its first frames, each the frame written at its
    index, and nothing for the frames that are gone."""
    r = VideoReader(write_truncated_video(tmp_path / "cut.mp4", n=60, keep=0.5, frame=bar_frame))
    frames = list(r.frames())
    n = len(frames)
    assert 5 < n < 60 and [i for i, _, _ in frames] == list(range(n)) and r.frames_decoded == n
    written = np.stack([bar_frame(i) for i in range(60)]).astype(np.int16)
    for i, _, f in frames:  # of the 60 frames written, the nearest is frame i (compression aside)
        assert np.abs(written - f.astype(np.int16)).mean(axis=(1, 2, 3)).argmin() == i


def test_a_truncated_video_says_it_decoded_fewer_frames_than_claimed(tmp_path):
    r = VideoReader(write_truncated_video(tmp_path / "cut.mp4", n=60, keep=0.8))
    n = sum(len(b) for b in r.batches(16))
    assert 10 < n < 56 and r.frames_decoded == n
    assert r.shortfall() == f"decoded {n} of the 60 frames its container claims"
    whole = VideoReader(write_test_video(tmp_path / "whole.mp4", n=30))
    assert sum(len(b) for b in whole.batches(8, every=4)) == 8 and whole.frames_decoded == 30
    assert whole.shortfall() is None


def test_no_face_clip_has_95_decodable_frames_not_98(media):
    r = VideoReader(media / "no_face.mp4")
    assert r.info.frames_claimed == 98
    frames = list(r.frames())
    assert len(frames) == 95
    assert [i for i, _, _ in frames] == list(range(95))
    assert r.shortfall() is None  # the container's last packets, not a loss


def test_no_library_writes_to_stderr_for_a_file_it_cannot_decode(tmp_path):
    """decord's native code and FFmpeg print their own lines on stderr: a child process shows them."""
    import subprocess
    import sys

    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    cut = write_truncated_video(tmp_path / "cut.mp4", keep=0.6)
    code = ("import sys\nfrom auhm.video import VideoReader, VideoError\n"
            "for p in sys.argv[1:]:\n"
            "    try:\n        print(sum(len(b) for b in VideoReader(p).batches(16)))\n"
            "    except VideoError as e:\n        print(e)\n")
    done = subprocess.run([sys.executable, "-c", code, str(bad), str(cut)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stderr == "", done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"{bad}: cannot decode (Invalid data found when processing input)" and int(lines[1]) > 0


def test_real_media_frame_counts(media):
    for name, n in [("single_face.mp4", 72), ("face_noface.mov", 169)]:
        assert sum(len(b) for b in VideoReader(media / name).batches(32)) == n
