"""Video decoding (decord, PyAV fallback) and encoding (PyAV)."""

from auhm.video.reader import FrameBatch, VideoError, VideoInfo, VideoReader
from auhm.video.writer import VideoWriter

__all__ = ["FrameBatch", "VideoError", "VideoInfo", "VideoReader", "VideoWriter"]
