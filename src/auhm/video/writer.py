"""Real compressed video out (PyAV): synthetic corpora and overlay renders."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


class VideoWriter:
    """Write RGB frames to a compressed video; the codec follows the container.

    ``.avi`` gets MPEG-4 Part 2 (what DISFA's ``_comp.avi`` files hold), ``.mp4`` gets H.264
    when the FFmpeg build has it, else MPEG-4 Part 2.
    """

    def __init__(self, path: str | os.PathLike, fps: float, width: int, height: int, quality: int = 5):
        import av

        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._container = av.open(str(self.path), mode="w")
        codec = "mpeg4"
        if self.path.suffix.lower() in (".mp4", ".mov", ".mkv"):
            try:
                av.codec.Codec("libx264", "w")
                codec = "libx264"
            except Exception:
                codec = "mpeg4"
        from fractions import Fraction

        self._stream = self._container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
        self._stream.width = width
        self._stream.height = height
        self._stream.pix_fmt = "yuv420p"
        if codec == "mpeg4":
            # constant quality: 2 best … 31 worst
            self._stream.options = {"qmin": str(quality), "qmax": str(quality)}
            self._stream.bit_rate = 4_000_000
        else:
            self._stream.options = {"crf": str(18 + 2 * quality), "preset": "veryfast"}
        self.frames_written = 0

    def write(self, frame: np.ndarray) -> None:
        import av

        vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
