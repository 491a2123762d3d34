"""What every corpus reader returns: sessions (one video or image sequence each) with their labels.

Each corpus's reader (registered in :mod:`auhm.data.corpora`) accepts its layout tolerantly
(names matched case-insensitively, both variants where public loaders disagree).
A problem that loses part of a session's labels is a warning; one that loses a whole session
is an ``InputFailure``. Neither stops the rest of the corpus from loading.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pandas as pd

from auhm.errors import InputFailure, UsageError
from auhm.face.truth_backend import TRUTH_DIR
from auhm.io import clean_labels
from auhm.targets import au_name

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass
class Session:
    """One video (or one BP4D image-folder sequence) of a corpus and its frame labels."""

    key: str  # path relative to the corpus root: the ``video`` value of every table
    path: Path
    subject: str
    task: str
    kind: str
    labels: pd.DataFrame  # frame (0-based int64) + AUxx float32, NaN = unlabelled
    split: str = ""
    frame_files: list[tuple[int, Path]] | None = None  # image sequences: (frame index, file), ordered
    truth: Path | None = None  # true-landmark sidecar, when the corpus has one
    unpreparable: str | None = None  # why ``auhm prepare`` cannot cut this session's crops (its labels still score)

    def label_array(self, aus: Sequence[int]) -> np.ndarray:
        """Dense (max frame + 1, len(aus)) float32 labels indexed by frame, NaN where absent."""
        n = int(self.labels["frame"].max()) + 1 if len(self.labels) else 0
        out = np.full((n, len(aus)), np.nan, np.float32)
        frames = self.labels["frame"].to_numpy(np.int64)
        for j, a in enumerate(aus):
            col = au_name(a)
            if col in self.labels:
                out[frames, j] = self.labels[col].to_numpy(np.float32)
        return out


@dataclass
class Corpus:
    """The sessions of one corpus, the subjects of each split, and what went wrong reading it."""

    kind: str
    root: Path
    aus: tuple[int, ...]
    sessions: list[Session]
    failures: list[InputFailure] = field(default_factory=list)
    warnings: list[InputFailure] = field(default_factory=list)
    splits: dict[str, list[str]] = field(default_factory=dict)  # split -> subjects
    folds: list[str] | None = None  # split names in fold order (k-fold corpora), else None
    heldout: tuple[str, ...] = ()  # subjects the corpus itself reserves for testing (synth)
    extra_columns: tuple[str, ...] = ()  # label columns beside the AUs that ``score`` reports too (UNBC's PSPI)

    def __iter__(self) -> Iterator[Session]:
        return iter(self.sessions)

    def __len__(self) -> int:
        return len(self.sessions)

    def __getitem__(self, i: int) -> Session:
        return self.sessions[i]


# ── label files ─────────────────────────────────────────────────────────────────────────────
def read_frame_values(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of a two-column ``frame,intensity`` file; a header row is skipped.

    Values stay raw (9 = unlabelled is cleaned by ``labels_frame``). Commas, semicolons or
    whitespace separate the columns.
    """
    path = Path(path)
    text = path.read_text(errors="replace")
    rows = [r for r in re.split(r"[\r\n]+", text) if r.strip()]
    if not rows:
        raise ValueError("empty label file")
    frames, values = [], []
    for i, row in enumerate(rows):
        parts = [p for p in re.split(r"[,;\s]+", row.strip()) if p]
        try:
            f, v = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            if i == 0:  # header row
                continue
            raise ValueError(f"line {i + 1} is not 'frame,intensity': {row.strip()[:60]!r}") from None
        frames.append(int(f))
        values.append(v)
    if not frames:
        raise ValueError("no 'frame,intensity' rows")
    return np.asarray(frames, np.int64), np.asarray(values, np.float64)


def read_au_files(found: dict[int, Path], aus: Sequence[int], name: str, missing_path: Callable[[int], Path], warnings: list[InputFailure]) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """(frames, values) of one intensity file per AU; a missing or unreadable file is a warning
    naming it, and that AU stays null for the session ``name``."""
    per_au = {}
    for au in aus:
        if au not in found:
            warnings.append(InputFailure(str(missing_path(au)), f"missing label file; {au_name(au)} is null for {name}"))
            continue
        try:
            per_au[au] = read_frame_values(found[au])
        except (OSError, ValueError) as e:
            warnings.append(InputFailure(str(found[au]), f"{e}; {au_name(au)} is null for {name}"))
    return per_au


def labels_frame(per_au: dict[int, tuple[np.ndarray, np.ndarray]], aus: Sequence[int]) -> pd.DataFrame:
    """Join per-AU (frames, values) on frame index: one row per frame any file lists.

    AUs without a file are all NaN; a frame one file lists and another does not is NaN there;
    codes outside 0–5 (9: unlabelled) are NaN (``io.clean_labels``).
    """
    all_frames = np.unique(np.concatenate([f for f, _ in per_au.values()])) if per_au else np.zeros(0, np.int64)
    out = pd.DataFrame({"frame": all_frames.astype(np.int64)})
    for a in aus:
        col = np.full(len(all_frames), np.nan, np.float32)
        if a in per_au:
            frames, values = per_au[a]
            col[np.searchsorted(all_frames, frames)] = values  # duplicates: last wins
        out[au_name(a)] = col
    return clean_labels(out)


# ── tolerant path matching ──────────────────────────────────────────────────────────────────
def find_dirs(root: Path, pattern: str) -> list[Path]:
    """Direct sub-folders of ``root`` whose name fully matches ``pattern``, case-insensitively."""
    rx = re.compile(pattern, re.IGNORECASE)
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and rx.fullmatch(p.name))


def walk_files(root: Path, skip_dirs: Sequence[str] = (TRUTH_DIR,)) -> Iterator[Path]:
    """Every file under ``root`` (sorted per folder), hidden entries and ``skip_dirs`` left out."""
    skip = {s.lower() for s in skip_dirs}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d.lower() not in skip)
        for name in sorted(filenames):
            if not name.startswith("."):
                yield Path(dirpath) / name


def numbered_images(folder: Path, offset: int = 0) -> list[tuple[int, Path]]:
    """(number in the file name + ``offset``, image) of every image in ``folder``, sorted by number:
    the frames of an image-sequence corpus, numbered as its label files number them."""
    out = []
    for p in walk_files(folder) if folder.is_dir() else ():
        m = re.findall(r"(\d+)", p.stem)
        if p.parent == folder and p.suffix.lower() in IMAGE_SUFFIXES and m:
            out.append((int(m[-1]) + offset, p))
    return sorted(out)


def truth_sidecar(root: Path, stem: str) -> Path | None:
    """``ROOT/auhm_truth/<stem>.parquet`` when the corpus carries true landmarks."""
    p = root / TRUTH_DIR / f"{stem}.parquet"
    return p if p.is_file() else None


def relative_key(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()


# ── the tail every reader shares ────────────────────────────────────────────────────────────
def add_session(corpus: Corpus, path: Path, labels: pd.DataFrame | None, failure: str, *, subject: str, task: str = "",
                key: str | None = None, split: str = "", frame_files: list[tuple[int, Path]] | None = None,
                truth_stem: str | None = None, truth_root: Path | None = None) -> Session | None:
    """Add the session of ``path`` with its ``labels`` to ``corpus``; without labels (None),
    report ``failure`` for ``path`` instead. Labels are copied (sessions of one subject share a
    table read once); the key is the path relative to the corpus root unless given, the truth
    sidecar the one named ``truth_stem`` (default the path's stem) under ``truth_root`` (default the root)."""
    if labels is None:
        corpus.failures.append(InputFailure(str(path), failure))
        return None
    root = truth_root if truth_root is not None else corpus.root
    session = Session(key=key if key is not None else relative_key(corpus.root, path), path=path, subject=subject, task=task,
                      kind=corpus.kind, labels=labels.copy(), split=split, frame_files=frame_files,
                      truth=truth_sidecar(root, truth_stem if truth_stem is not None else path.stem))
    corpus.sessions.append(session)
    return session


# ── entry points ────────────────────────────────────────────────────────────────────────────
def load_sessions(kind: str, root: str | os.PathLike, *, right_camera: bool = False, **options) -> Corpus:
    """All sessions of a corpus, each with its labels and split.

    ``root`` is the dataset folder (the manifest CSV for kind ``csv``); ``right_camera`` adds
    DISFA's right-camera videos; other ``options`` go to the readers that name them (FEAFA+'s
    ``scale_to_five``).
    """
    from auhm.data.corpora import corpus_spec, read_options
    from auhm.data.splits import assign_splits

    spec = corpus_spec(kind)
    kind = spec.name
    root = Path(root)
    if not root.exists():
        raise UsageError(f"{root}: no such {'file' if kind == 'csv' else 'directory'}")
    if kind != "csv" and not root.is_dir():
        raise UsageError(f"{root}: not a directory (a {kind} corpus root is a folder)")
    corpus = spec.read(root, **read_options(spec, right_camera=right_camera, **options))
    if not corpus.sessions and not corpus.failures:
        raise UsageError(f"{root}: no {kind} sessions found (expected {spec.expected})")
    assign_splits(corpus)
    return corpus


def load_labels(kind: str, root: str | os.PathLike) -> pd.DataFrame:
    """Labels of a whole corpus as one table (video, frame, AUxx), in the schema ``auhm score`` reads.

    Raises ``ValueError`` naming the root when no session has labels.
    """
    corpus = load_sessions(kind, root)
    if not corpus.sessions:
        reasons = "; ".join(str(f) for f in corpus.failures[:3])
        raise ValueError(f"{root}: no labelled {kind} sessions found" + (f" ({reasons})" if reasons else ""))
    return labels_table(corpus)


def labels_table(corpus: Corpus) -> pd.DataFrame:
    """Every session's label rows, keyed by the session key (video int32 frame, float32 AUs)."""
    parts = []
    for s in corpus.sessions:
        df = s.labels.copy()
        df.insert(0, "video", s.key)
        parts.append(df)
    cols = ["video", "frame"] + [au_name(a) for a in corpus.aus] + list(corpus.extra_columns)
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="float32") for c in cols}).astype({"video": str, "frame": "int32"})
    table = pd.concat(parts, ignore_index=True)[cols]
    table["frame"] = table["frame"].astype("int32")
    return table


def labels_from_rows(rows: dict, aus) -> pd.DataFrame:
    """A label table (frame, AUxx …) from {frame: [value per AU]}, in frame order (the per-frame label files of image-sequence corpora)."""
    order = sorted(rows)
    labels = pd.DataFrame({"frame": np.asarray(order, np.int64)})
    values = np.asarray([rows[k] for k in order], np.float32).reshape(len(order), len(aus))
    for j, a in enumerate(aus):
        labels[au_name(a)] = values[:, j]
    return labels
