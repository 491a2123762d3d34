"""DISFA: ``Videos_LeftCamera/LeftVideoSN001_comp.avi`` + ``ActionUnit_Labels/SN001/SN001_au1.txt``.

Label lines are ``frame,intensity`` with frames numbered from 1 (line t is video frame t−1).
Folder and file names are matched case-insensitively, with both right-camera spellings
(``Video_RightCamera`` / ``Videos_RightCamera``, ``_Comp`` / ``_comp``) accepted.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.layout import Layout, SessionPaths
from auhm.data.readers import Corpus, add_session, find_dirs, labels_frame, read_au_files, walk_files
from auhm.data.splits import THREE_FOLDS, round_robin
from auhm.errors import InputFailure
from auhm.video.inputs import VIDEO_SUFFIXES

AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
# The standard 3-fold partition of the AU-detection literature.
PARTS: dict[str, tuple[str, ...]] = dict(zip(THREE_FOLDS, (
    ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
)))
SUBJECT = r"(?i)(SN\d{3})"
_VIDEO_DIR = {"left": r"videos?_?left_?camera", "right": r"videos?_?right_?camera"}
_VIDEO_NAME = re.compile(r"(left|right)_?video_?(SN\d+)(?:_comp)?", re.IGNORECASE)
_LABEL_NAME = re.compile(r"(SN\d+)_au(\d+)\.txt", re.IGNORECASE)


def find_videos(root: Path, right_camera: bool = False) -> list[tuple[str, str, Path]]:
    """(subject, camera, path) of every DISFA video under ``root``."""
    out = []
    for camera in ("left", "right") if right_camera else ("left",):
        for folder in find_dirs(root, _VIDEO_DIR[camera]):
            for p in sorted(folder.iterdir()):
                m = _VIDEO_NAME.fullmatch(p.stem)
                if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES and m and m.group(1).lower() == camera:
                    out.append((m.group(2).upper(), camera, p))
    return out


def find_label_files(root: Path) -> tuple[Path | None, dict[str, dict[int, Path]]]:
    """The labels folder and {subject: {au: file}} found under it."""
    folders = find_dirs(root, r"action_?units?_?labels")
    if not folders:
        return None, {}
    files: dict[str, dict[int, Path]] = {}
    for p in walk_files(folders[0]):
        m = _LABEL_NAME.fullmatch(p.name)
        if m:
            files.setdefault(m.group(1).upper(), {})[int(m.group(2))] = p
    return folders[0], files


def read_subject_labels(subject: str, files: dict[int, Path], labels_dir: Path, warnings: list[InputFailure]):
    """Labels of one subject, 0-based frames (the files count from 1); each missing or unreadable
    AU file is a warning."""
    read = read_au_files(files, AUS, subject, lambda au: labels_dir / subject / f"{subject}_au{au}.txt", warnings)
    per_au = {au: (frames - 1, values) for au, (frames, values) in read.items()}
    return labels_frame(per_au, AUS) if per_au else None


def read(root: Path, right_camera: bool = False, kind: str = "disfa") -> Corpus:
    corpus = Corpus(kind=kind, root=root, aus=AUS, sessions=[])
    labels_dir, label_files = find_label_files(root)
    videos = find_videos(root, right_camera)
    cache: dict[str, object] = {}
    for subject, camera, path in videos:
        if subject not in label_files:
            where = labels_dir / subject if labels_dir else root / "ActionUnit_Labels"
            add_session(corpus, path, None, f"no label files for {subject} (looked in {where})", subject=subject)
            continue
        if subject not in cache:
            cache[subject] = read_subject_labels(subject, label_files[subject], labels_dir, corpus.warnings)
        add_session(corpus, path, cache[subject], f"no readable label file for {subject} in {labels_dir / subject}", subject=subject,
                    task=camera)
    with_video = {s for s, _, _ in videos}
    for subject in sorted(set(label_files) - with_video):
        corpus.warnings.append(InputFailure(str(labels_dir / subject), f"labels of {subject} but no video; skipped"))
    return corpus


def disfa_splits(subjects: Sequence[str], corpus: Corpus | None = None) -> dict[str, str]:
    """The standard part of each DISFA subject; unknown subjects round robin over the parts."""
    known = {s: part for part, members in PARTS.items() for s in members}
    out = {s: known[s.upper()] for s in subjects if s.upper() in known}
    out.update(round_robin([s for s in subjects if s.upper() not in known], THREE_FOLDS))
    return out


_DISFA_IDS = list(range(1, 14)) + [16, 17, 18, 21] + list(range(23, 33))


def disfa_subject(index: int) -> str:
    """The index-th DISFA subject id (0 → SN001, 13 → SN016, 27 → SN033)."""
    n = _DISFA_IDS[index] if index < len(_DISFA_IDS) else 33 + index - len(_DISFA_IDS)
    return f"SN{n:03d}"


class DisfaLayout(Layout):
    """``auhm synth --layout disfa``::

        Videos_LeftCamera/LeftVideoSN001_comp.avi          MPEG-4 Part 2 video
        ActionUnit_Labels/SN001/SN001_au1.txt …             "frame,intensity" per line, frames from 1,
                                                            integers 0–5, no header
        subjects SN001–SN013, SN016–SN018, SN021, SN023–SN032 (DISFA's ids, in order), then SN033 …
    """

    name, aus = "disfa", AUS

    def session(self, index: int) -> SessionPaths:
        sn = disfa_subject(index)
        return SessionPaths(sn, None, f"Videos_LeftCamera/LeftVideo{sn}_comp.avi", f"LeftVideo{sn}_comp")

    def label_path(self, session: SessionPaths, au: int) -> str:
        return f"ActionUnit_Labels/{session.subject}/{session.subject}_au{au}.txt"


register_corpus(CorpusSpec(
    "disfa", AUS, read, disfa_splits, subject=SUBJECT, folds=THREE_FOLDS, layout=DisfaLayout,
    expected="Videos_LeftCamera/LeftVideoSN001_comp.avi and ActionUnit_Labels/SN001/SN001_au1.txt",
))
