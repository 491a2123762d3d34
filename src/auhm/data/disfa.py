"""DISFA: ``Videos_LeftCamera/LeftVideoSN001_comp.avi`` + ``ActionUnit_Labels/SN001/SN001_au1.txt``.

Label lines are ``frame,intensity`` with frames numbered from 1 (line t is video frame t−1).
Folder and file names are matched case-insensitively, with both right-camera spellings
(``Video_RightCamera`` / ``Videos_RightCamera``, ``_Comp`` / ``_comp``) accepted.
"""

from __future__ import annotations

import re
from pathlib import Path

from auhm.data.readers import (
    Corpus,
    Session,
    find_dirs,
    labels_frame,
    read_au_files,
    relative_key,
    truth_sidecar,
    walk_files,
)
from auhm.errors import InputFailure
from auhm.targets import DATASET_AUS

AUS = DATASET_AUS["disfa"]
VIDEO_SUFFIXES = (".avi", ".mp4", ".mov", ".mkv", ".wmv")
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
            corpus.failures.append(InputFailure(str(path), f"no label files for {subject} (looked in {where})"))
            continue
        if subject not in cache:
            cache[subject] = read_subject_labels(subject, label_files[subject], labels_dir, corpus.warnings)
        labels = cache[subject]
        if labels is None:
            corpus.failures.append(InputFailure(str(path), f"no readable label file for {subject} in {labels_dir / subject}"))
            continue
        corpus.sessions.append(
            Session(
                key=relative_key(root, path),
                path=path,
                subject=subject,
                task=camera,
                kind=kind,
                labels=labels.copy(),
                truth=truth_sidecar(root, path.stem),
            )
        )
    with_video = {s for s, _, _ in videos}
    for subject in sorted(set(label_files) - with_video):
        corpus.warnings.append(InputFailure(str(labels_dir / subject), f"labels of {subject} but no video; skipped"))
    return corpus
