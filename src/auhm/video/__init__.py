"""Video decoding (decord, PyAV fallback) and encoding (PyAV)."""

from auhm.video.reader import FrameBatch, VideoError, VideoInfo, VideoReader, open_video
from auhm.video.writer import VideoWriter

__all__ = ["FrameBatch", "VideoError", "VideoInfo", "VideoReader", "VideoWriter", "open_video"]
