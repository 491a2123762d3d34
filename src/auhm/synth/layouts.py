"""The on-disk layouts of the real corpora, written exactly as their readers expect them.

DISFA (``--layout disfa``)::

    Videos_LeftCamera/LeftVideoSN001_comp.avi          MPEG-4 Part 2 video
    ActionUnit_Labels/SN001/SN001_au1.txt …             "frame,intensity" per line, frames from 1,
                                                        integers 0–5, no header; AUs 1 2 4 5 6 9 12 15 17 20 25 26
    subjects SN001–SN013, SN016–SN018, SN021, SN023–SN032 (DISFA's ids, in order), then SN033 …

BP4D (``--layout bp4d``): one session (subject, task) per subject::

    BP4D/F001/T1/0001.jpg …                             JPEG frames, numbered from 1
    AU Intensity Codes3.0/AU06/F001_T1_AU06.csv         "frame,intensity", no header, 9 = unlabelled
    subjects F001, M001, F002, M002 …; tasks T1, T1, T2, T2, T1 … (both task names occur)
    AUs 6 10 12 14 17; the first frame and one short run per session are unlabelled (9)

FERA 2017 (``--layout fera2017``): view 1 only::

    Video/FERA17_TR_F001_T1_1.mp4                       H.264 (MPEG-4 Part 2 without libx264)
    AU_Int/FERA17_TR_F001_T1_AU01_Int.csv               "frame,intensity", no header, frames from 1
    subjects and tasks as BP4D; AUs 1 4 6 10 12 14 17

auhm's own sidecar, in every layout: ``auhm_truth/<video stem>.parquet`` (BP4D: ``F001_T1``) and
``auhm_truth/manifest.json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from auhm.io import atomic_path
from auhm.targets import DATASET_AUS, au_name
from auhm.video import VideoWriter

_DISFA_IDS = list(range(1, 14)) + [16, 17, 18, 21] + list(range(23, 33))


def disfa_subject(index: int) -> str:
    """The index-th DISFA subject id (0 → SN001, 13 → SN016, 27 → SN033)."""
    n = _DISFA_IDS[index] if index < len(_DISFA_IDS) else 33 + index - len(_DISFA_IDS)
    return f"SN{n:03d}"


def bp4d_subject(index: int) -> tuple[str, str]:
    """(subject, task) of the index-th BP4D-style session: F001/T1, M001/T1, F002/T2, M002/T2 …"""
    return f"{'FM'[index % 2]}{index // 2 + 1:03d}", f"T{(index // 2) % 2 + 1}"


@dataclass(frozen=True)
class Session:
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


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def _rows(labels: np.ndarray) -> str:
    return "".join(f"{i + 1},{int(v)}\n" for i, v in enumerate(labels))


class Layout:
    """One corpus layout: session naming, frame sink and label files."""

    name: str
    aus: tuple[int, ...]
    marks_unlabelled = False  # whether some frames are coded 9

    def session(self, index: int) -> Session:
        raise NotImplementedError

    def frame_sink(self, root: Path, session: Session, fps: float, width: int, height: int, quality: int):
        return VideoWriter(root / session.video, fps, width, height, quality=quality)

    def label_path(self, session: Session, au: int) -> str:
        """Where the layout keeps one AU's label file, relative to the corpus root."""
        raise NotImplementedError

    def write_labels(self, root: Path, session: Session, labels: np.ndarray) -> list[str]:
        """labels: (frames, len(aus)) integers (9 = unlabelled); returns the files, relative to root."""
        out = []
        for k, au in enumerate(self.aus):
            rel = self.label_path(session, au)
            _write_text(root / rel, _rows(labels[:, k]))
            out.append(rel)
        return out


class DisfaLayout(Layout):
    name, aus = "disfa", DATASET_AUS["disfa"]

    def session(self, index: int) -> Session:
        sn = disfa_subject(index)
        return Session(sn, None, f"Videos_LeftCamera/LeftVideo{sn}_comp.avi", f"LeftVideo{sn}_comp")

    def label_path(self, session: Session, au: int) -> str:
        return f"ActionUnit_Labels/{session.subject}/{session.subject}_au{au}.txt"


class Bp4dLayout(Layout):
    name, aus = "bp4d", DATASET_AUS["bp4d"]
    marks_unlabelled = True

    def session(self, index: int) -> Session:
        subject, task = bp4d_subject(index)
        return Session(subject, task, f"BP4D/{subject}/{task}", f"{subject}_{task}")

    def frame_sink(self, root: Path, session: Session, fps: float, width: int, height: int, quality: int):
        return JpegFolderWriter(root / session.video, quality=100 - 3 * quality)

    def label_path(self, session: Session, au: int) -> str:
        name = au_name(au)
        return f"AU Intensity Codes3.0/{name}/{session.subject}_{session.task}_{name}.csv"


class Fera2017Layout(Layout):
    name, aus = "fera2017", DATASET_AUS["fera2017"]

    def session(self, index: int) -> Session:
        subject, task = bp4d_subject(index)
        stem = f"FERA17_TR_{subject}_{task}_1"
        return Session(subject, task, f"Video/{stem}.mp4", stem)

    def label_path(self, session: Session, au: int) -> str:
        return f"AU_Int/FERA17_TR_{session.subject}_{session.task}_{au_name(au)}_Int.csv"


LAYOUTS: dict[str, type[Layout]] = {"disfa": DisfaLayout, "bp4d": Bp4dLayout, "fera2017": Fera2017Layout}
