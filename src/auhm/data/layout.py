"""Writing a corpus in a real dataset's on-disk layout, exactly as its reader expects it (``auhm
synth --layout NAME``): the base every corpus's layout extends, beside its reader.

Every layout also gets auhm's own sidecar: ``auhm_truth/<video stem>.parquet`` (BP4D:
``F001_T1``) and ``auhm_truth/manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auhm.io import atomic_path
from auhm.video import VideoWriter


@dataclass(frozen=True)
class SessionPaths:
    """Where one synthetic session's files go."""

    subject: str
    task: str | None
    video: str  # video file or frame folder, relative to the corpus root
    stem: str  # sidecar name (auhm_truth/<stem>.parquet)


def write_jpeg(path: Path, rgb: np.ndarray, quality: int) -> None:
    if not cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"{path}: cannot write JPEG")


class JpegFolderWriter:
    """Frames as numbered JPEG files in a folder (BP4D's distribution format)."""

    def __init__(self, folder: Path, quality: int = 90):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.quality = quality
        self.frames_written = 0

    def write(self, rgb: np.ndarray) -> None:
        self.frames_written += 1
        write_jpeg(self.folder / f"{self.frames_written:04d}.jpg", rgb, self.quality)

    def close(self) -> None:
        pass

    def __enter__(self) -> "JpegFolderWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def label_rows(labels: np.ndarray) -> str:
    """``frame,intensity`` lines, frames numbered from 1."""
    return "".join(f"{i + 1},{int(v)}\n" for i, v in enumerate(labels))


class Layout:
    """One corpus layout: session naming, frame sink and label files."""

    name: str
    aus: tuple[int, ...]
    marks_unlabelled = False  # whether some frames are coded 9

    def session(self, index: int) -> SessionPaths:
        raise NotImplementedError

    def frame_sink(self, root: Path, session: SessionPaths, fps: float, width: int, height: int, quality: int):
        return VideoWriter(root / session.video, fps, width, height, quality=quality)

    def label_path(self, session: SessionPaths, au: int) -> str:
        """Where the layout keeps one AU's label file, relative to the corpus root."""
        raise NotImplementedError

    def write_labels(self, root: Path, session: SessionPaths, labels: np.ndarray) -> list[str]:
        """labels: (frames, len(aus)) integers (9 = unlabelled); returns the files, relative to root."""
        out = []
        for k, au in enumerate(self.aus):
            rel = self.label_path(session, au)
            write_text(root / rel, label_rows(labels[:, k]))
            out.append(rel)
        return out
