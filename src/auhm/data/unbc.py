"""UNBC-McMaster Shoulder Pain: ``Images/042-ll042/ll042t1aaaff/ll042t1aaaff001.png`` and per-frame FACS files.

Layout followed (the archive as distributed): ``Frame_Labels/FACS/<subj>/<seq>/<frame>_facs.txt``
holds one row per coded AU, ``AU intensity`` in scientific notation (a third column, when
present, is ignored); an empty file is a neutral frame (every AU 0), and an AU a file does not
list is 0 in that frame. ``Frame_Labels/PSPI/<subj>/<seq>/<frame>_facs.txt`` holds the frame's
PSPI pain score, kept as the ``PSPI`` label column (0–16) that ``auhm score`` reports beside the
AUs. AU 43 (eyes closed) is occurrence: any intensity counts as 1. Frames are numbered by the
digits that end the image name (from 1), as their label files are. ``AAM_landmarks/…/<frame>_aam.txt``
(66 points, iBUG's 68 without the inner mouth corners) are read by :func:`aam_landmarks`.
Subjects are the folder ids (``042-ll042``); subjects go round robin over three folds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.readers import Corpus, Session, find_dirs, numbered_images, relative_key, truth_sidecar, labels_from_rows
from auhm.data.splits import THREE_FOLDS, three_folds
from auhm.errors import InputFailure
from auhm.io import clean_labels

AUS = (4, 6, 7, 9, 10, 12, 20, 25, 26, 43)
OCCURRENCE_ONLY = (43,)
PSPI = "PSPI"
SUBJECT = r"(?i)(?<![0-9])(\d{3}-[a-z]{2}\d{3})"  # 042-ll042
_FRAME = re.compile(r"(.*?)(\d+)_(facs|aam)\.txt", re.IGNORECASE)
# iBUG 68 without 60 and 64 (the inner mouth corners): where each of the 66 AAM points goes.
AAM_TO_IBUG = [i for i in range(68) if i not in (60, 64)]


def read_facs_file(path: Path) -> dict[int, float]:
    """{AU: intensity} of one frame's FACS file; empty for a neutral frame. ValueError names a bad line."""
    out = {}
    for i, line in enumerate(Path(path).read_text(errors="replace").splitlines()):
        parts = line.split()
        if not parts:
            continue
        try:
            au, value = int(round(float(parts[0]))), float(parts[1])
        except (ValueError, IndexError):
            raise ValueError(f"line {i + 1} is not 'AU intensity': {line.strip()[:60]!r}") from None
        out[au] = 1.0 if au in OCCURRENCE_ONLY and value > 0 else value
    return out


def read_pspi_file(path: Path) -> float:
    text = Path(path).read_text(errors="replace").split()
    if len(text) != 1:
        raise ValueError(f"expected one PSPI value, found {len(text)} fields")
    return float(text[0])


def aam_landmarks(path: Path) -> np.ndarray:
    """(68, 2) iBUG points of one ``_aam.txt`` (66 lines ``x y``); the two inner mouth corners, which
    the 66-point scheme lacks, are the mean of their neighbours on the inner lip."""
    pts = np.loadtxt(path, dtype=np.float64, ndmin=2)
    if pts.shape != (66, 2):
        raise ValueError(f"{path}: {pts.shape[0]} points, not 66")
    out = np.full((68, 2), np.nan)
    out[AAM_TO_IBUG] = pts
    out[60] = (out[48] + out[61]) / 2
    out[64] = (out[54] + out[63]) / 2
    return out.astype(np.float32)


def _frame_files(top: Path | None) -> dict[tuple[str, str], dict[int, Path]]:
    """{(subject, sequence): {frame: file}} under ``top/<subj>/<seq>/``."""
    out: dict[tuple[str, str], dict[int, Path]] = {}
    if top is None:
        return out
    for subject in sorted(p for p in top.iterdir() if p.is_dir()):
        for seq in sorted(p for p in subject.iterdir() if p.is_dir()):
            for f in sorted(seq.iterdir()):
                m = _FRAME.fullmatch(f.name)
                if m:
                    out.setdefault((subject.name, seq.name), {})[int(m.group(2))] = f
    return out


def _first(dirs: list[Path]) -> Path | None:
    return dirs[0] if dirs else None


def read(root: Path) -> Corpus:
    corpus = Corpus(kind="unbc", root=root, aus=AUS, sessions=[], extra_columns=(PSPI,))
    labels_dir = _first(find_dirs(root, r"frame_labels"))
    facs = _frame_files(_first(find_dirs(labels_dir, "facs")) if labels_dir else None)
    pspi = _frame_files(_first(find_dirs(labels_dir, "pspi")) if labels_dir else None)
    images_dir = _first(find_dirs(root, "images"))
    for (subject, seq), files in sorted(facs.items()):
        folder = images_dir / subject / seq if images_dir else root / "Images" / subject / seq
        frames = numbered_images(folder)
        if not frames:
            corpus.failures.append(InputFailure(str(folder), f"FACS labels of {seq} but no images"))
            continue
        rows = {}
        for frame, f in files.items():
            try:
                coded = read_facs_file(f)
            except (OSError, ValueError) as e:
                corpus.failures.append(InputFailure(str(f), f"{e}; frame {frame} is unlabelled"))
                continue
            rows[frame] = [coded.get(a, 0.0) for a in AUS]
        pspi_values = {}
        for frame, f in pspi.get((subject, seq), {}).items():
            try:
                pspi_values[frame] = read_pspi_file(f)
            except (OSError, ValueError) as e:
                corpus.failures.append(InputFailure(str(f), f"{e}; PSPI of frame {frame} is null"))
        if not rows:
            corpus.failures.append(InputFailure(str(folder), f"no readable FACS file for {seq}"))
            continue
        order = sorted(rows)
        labels = labels_from_rows(rows, AUS)
        labels = clean_labels(labels)
        labels[PSPI] = np.asarray([pspi_values.get(f, np.nan) for f in order], np.float32)
        corpus.sessions.append(Session(
            key=relative_key(root, folder), path=folder, subject=subject, task=seq, kind="unbc",
            labels=labels, frame_files=frames, truth=truth_sidecar(root, seq),
        ))
    return corpus


register_corpus(CorpusSpec(
    "unbc", AUS, read, three_folds, subject=SUBJECT, folds=THREE_FOLDS,
    expected="Images/042-ll042/<seq>/<seq>001.png and Frame_Labels/FACS/042-ll042/<seq>/<seq>001_facs.txt",
))
