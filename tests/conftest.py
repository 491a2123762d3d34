"""Shared fixtures: real media from ../shared/media (skipped when absent) and small generated videos."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

MEDIA = Path(__file__).resolve().parents[1].parent / "shared" / "media"


@pytest.fixture(scope="session")
def media() -> Path:
    """The real test videos of ../shared/media; tests using it skip when the folder is absent."""
    if not (MEDIA / "single_face.mp4").exists():
        pytest.skip("../shared/media is absent")
    return MEDIA


def write_test_video(path: Path, n: int = 24, size: tuple[int, int] = (96, 64), fps: float = 10.0) -> Path:
    """A short real compressed video whose every frame differs (a moving bar)."""
    from auhm.video import VideoWriter

    w, h = size
    with VideoWriter(path, fps, w, h) as vw:
        for i in range(n):
            f = np.full((h, w, 3), 40, np.uint8)
            x = (i * 3) % (w - 8)
            f[:, x : x + 8] = (255, 128, 0)
            f[: (i % h), :4] = 200
            vw.write(f)
    return path


def write_truncated_video(path: Path, n: int = 60, keep: float = 0.8) -> Path:
    """An MP4 of ``n`` frames (index first, so it still opens) cut to its first ``keep`` of bytes:
    the container claims ``n`` frames, fewer decode."""
    import av

    full = path.with_name(f"full-{path.name}")
    with av.open(str(full), "w", options={"movflags": "faststart"}) as container:
        stream = container.add_stream("mpeg4", rate=10)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        rng = np.random.default_rng(0)
        for _ in range(n):
            frame = rng.integers(0, 255, (64, 96, 3), dtype=np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    data = full.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    full.unlink()
    return path


@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    return write_test_video(tmp_path / "clip.avi")
