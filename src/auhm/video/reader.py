"""Streaming video decoding: decord first, PyAV where decord cannot open the container.

Neither library writes to stderr: a file that cannot be decoded is one VideoError, in words.

Every frame a reader yields was decoded from the file. decord pads some streams whose last
packets do not decode by repeating the last good frame; the reader holds back a tail of identical frames and, at the end of the stream, keeps only as
many as PyAV can actually decode.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from auhm.errors import InputError

# Identical frames held back at most while waiting to see whether they are decord's padding.
_MAX_HELD_DUPLICATES = 64
# Frames a whole video may decode fewer than its container claims: the last few packets of some
# streams do not decode, and containers without a frame count estimate it.
_TOLERATED_SHORTFALL = 4


class VideoError(InputError):
    """A video that cannot be opened or decoded; the message names the file and the reason."""


@dataclass(frozen=True)
class VideoInfo:
    path: str
    frames_claimed: int  # what the container says; decodable frames may be fewer
    fps: float
    width: int
    height: int
    backend: str


@dataclass
class FrameBatch:
    indices: np.ndarray  # int64, 0-based frame numbers
    timestamps: np.ndarray  # float64 seconds
    frames: np.ndarray  # uint8 (n, H, W, 3) RGB

    def __len__(self) -> int:
        return len(self.indices)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: no such file")
    if path.is_dir():
        raise VideoError(f"{path}: is a directory, not a video")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file")


def _why(e: Exception) -> str:
    """A library error in a few words: FFmpeg's own text without its errno and call name."""
    return getattr(e, "strerror", None) or (str(e).splitlines()[0][:200] if str(e) else type(e).__name__)


def _pyav_count_decodable(path: str) -> int:
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        n = 0
        try:
            for _ in container.decode(stream):
                n += 1
        except av.error.FFmpegError:
            pass
    return n


class VideoReader:
    """Iterate a video as RGB frame batches, keeping memory flat whatever its length."""

    def __init__(self, path: str | os.PathLike, backend: str = "auto", num_threads: int = 0):
        self.path = Path(path)
        _check_file(self.path)
        self._num_threads = num_threads
        if backend != "auto":
            try:
                self.info = getattr(self, f"_open_{backend}")()
            except VideoError as e:
                raise VideoError(f"{self.path}: cannot decode ({e})") from None
            return
        # PyAV looks first: a file it cannot open is reported in its words, and decord (whose
        # native code prints its own error line on stderr) never sees it.
        try:
            self.info = self._open_pyav()
        except VideoError as e:
            raise VideoError(f"{self.path}: cannot decode ({e})") from None
        try:
            self.info = self._open_decord()
        except VideoError:
            pass  # decoded with PyAV

    # -- opening ---------------------------------------------------------------------------
    def _open_decord(self) -> VideoInfo:
        import decord

        decord.logging.set_level(decord.logging.QUIET)  # its FFmpeg's own lines; failures come back as exceptions
        try:
            vr = decord.VideoReader(str(self.path), num_threads=self._num_threads)
            n = len(vr)
            if n == 0:
                raise VideoError("no frames")
            h, w = vr[0].shape[:2]
            fps = float(vr.get_avg_fps())
        except VideoError:
            raise
        except Exception as e:  # decord raises bare DECORDError / RuntimeError
            raise VideoError(str(e).splitlines()[0][:200] or type(e).__name__) from None
        self._decord = vr
        return VideoInfo(str(self.path), n, fps, w, h, "decord")

    def _open_pyav(self) -> VideoInfo:
        import av

        try:
            with av.open(str(self.path)) as c:
                if not c.streams.video:
                    raise VideoError("no video stream")
                s = c.streams.video[0]
                fps = float(s.average_rate or s.guessed_rate or 25.0)
                n = int(s.frames or 0)
                w, h = s.codec_context.width, s.codec_context.height
                if not w or not h:
                    raise VideoError("video stream has no frame size")
        except VideoError:
            raise
        except Exception as e:
            raise VideoError(_why(e)) from None
        self._decord = None
        return VideoInfo(str(self.path), n, fps, w, h, "pyav")

    # -- iteration -------------------------------------------------------------------------
    def batches(self, batch_size: int = 32, every: int = 1) -> Iterator[FrameBatch]:
        """Decoded frames in order, ``batch_size`` at a time; ``every`` > 1 keeps every k-th."""
        frames = self.frames()
        buf_i, buf_t, buf_f = [], [], []
        for index, ts, frame in frames:
            if index % every:
                continue
            buf_i.append(index)
            buf_t.append(ts)
            buf_f.append(frame)
            if len(buf_i) == batch_size:
                yield FrameBatch(np.asarray(buf_i, np.int64), np.asarray(buf_t, np.float64), np.stack(buf_f))
                buf_i, buf_t, buf_f = [], [], []
        if buf_i:
            yield FrameBatch(np.asarray(buf_i, np.int64), np.asarray(buf_t, np.float64), np.stack(buf_f))

    def frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        """(index, timestamp, RGB frame) for every decodable frame; counted in ``frames_decoded``."""
        self.frames_decoded = 0
        for item in self._decord_frames() if self.info.backend == "decord" else self._pyav_frames():
            self.frames_decoded += 1
            yield item

    def shortfall(self) -> str | None:
        """After reading to the end, when the video decoded clearly fewer frames than its container
        claims (a truncated or damaged file): both counts, said in a few words; else None."""
        claimed, decoded = self.info.frames_claimed, getattr(self, "frames_decoded", 0)
        if claimed - decoded <= max(_TOLERATED_SHORTFALL, claimed // 500):
            return None
        return f"decoded {decoded} of the {claimed} frames its container claims"

    def _decord_frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        vr = self._decord
        n = self.info.frames_claimed
        fps = self.info.fps or 25.0
        chunk = 32
        held: list[tuple[int, float, np.ndarray]] = []  # run of frames identical to the one before
        prev = None
        for start in range(0, n, chunk):
            idx = list(range(start, min(start + chunk, n)))
            try:
                arr = vr.get_batch(idx).asnumpy()
            except Exception as e:
                raise VideoError(f"{self.path}: decoding failed at frame {start}: {str(e).splitlines()[0][:200]}") from None
            for i, frame in zip(idx, arr):
                item = (i, i / fps, frame)
                if prev is not None and np.array_equal(frame, prev):
                    held.append(item)
                    if len(held) > _MAX_HELD_DUPLICATES:  # a static scene, not padding
                        yield from held
                        held = []
                    continue
                yield from held
                held = []
                yield item
                prev = frame
        if held:
            # Keep only the held frames that really decode.
            decodable = _pyav_count_decodable(str(self.path))
            for item in held:
                if item[0] < decodable:
                    yield item

    def _pyav_frames(self) -> Iterator[tuple[int, float, np.ndarray]]:
        import av

        fps = self.info.fps or 25.0
        try:
            container = av.open(str(self.path))
        except Exception as e:
            raise VideoError(f"{self.path}: {_why(e)}") from None
        with container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            i = 0
            try:
                for frame in container.decode(stream):
                    yield i, i / fps, frame.to_ndarray(format="rgb24")
                    i += 1
            except av.error.FFmpegError as e:
                if i == 0:
                    raise VideoError(f"{self.path}: cannot decode its first frame ({_why(e)})") from None
                # A truncated file: the frames decoded so far are real; stop there.
            if i == 0:
                raise VideoError(f"{self.path}: no decodable frames")
