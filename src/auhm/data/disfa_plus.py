"""DISFA+: ``Labels/SN001/A1_AU1_TrailNo_1/AU1.txt`` beside ``Images/SN001/A1_AU1_TrailNo_1/000.jpg``.

Layout followed (the extended DISFA release, Mavadati et al. 2016): one folder per subject and
trial under ``Labels/`` and ``Images/`` (``Aligned/``, the aligned faces, where a trial has no
``Images/`` folder), one label file per AU. Each label line is ``frame_id intensity``; the frame
id is the image's number (``000.jpg`` or ``0``), header lines are skipped. The 12 AUs and the 0–5
scale are DISFA's. Trials named ``A…`` are posed, the others spontaneous (the session's task is the
trial name either way). Its 9 subjects are DISFA subjects with the same ids, so a model trained on
DISFA has seen them: ``auhm evaluate`` leaves them out by the corpus-pair rule of
:mod:`auhm.data.overlap`. Subjects take DISFA's standard 3-fold parts.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.disfa import AUS, SUBJECT, disfa_splits
from auhm.data.readers import Corpus, Session, find_dirs, labels_frame, numbered_images, relative_key, truth_sidecar, walk_files
from auhm.data.splits import THREE_FOLDS
from auhm.errors import InputFailure
from auhm.targets import au_name

# The subjects DISFA+ recorded, all of them DISFA subjects under the same ids.
SUBJECTS = ("SN001", "SN003", "SN004", "SN007", "SN009", "SN010", "SN013", "SN025", "SN027")
_SUBJECT_DIR = re.compile(r"SN\d{3}", re.IGNORECASE)
_LABEL_NAME = re.compile(r"AU_?(\d+)\.txt", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+)")


def read_label_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(frames, values) of one DISFA+ AU file: lines ``frame_id intensity``, the frame id an image
    name or a number; lines before the first such line are a header. ValueError names a bad line."""
    frames, values = [], []
    for i, line in enumerate(Path(path).read_text(errors="replace").splitlines()):
        parts = line.split()
        if not parts:
            continue
        number = _NUMBER.search(parts[0])
        try:
            value = float(parts[1]) if number and len(parts) == 2 else None
        except ValueError:
            value = None
        if value is None:
            if frames:
                raise ValueError(f"line {i + 1} is not 'frame_id intensity': {line.strip()[:60]!r}")
            continue  # header
        frames.append(int(number.group(1)))
        values.append(value)
    if not frames:
        raise ValueError("no 'frame_id intensity' lines")
    return np.asarray(frames, np.int64), np.asarray(values, np.float64)


def _trial_dirs(root: Path, name: str) -> dict[tuple[str, str], Path]:
    """{(subject, trial): folder} under ``root/<name>/SNxxx/<trial>/``."""
    out = {}
    for top in find_dirs(root, name):
        for subject in sorted(p for p in top.iterdir() if p.is_dir() and _SUBJECT_DIR.fullmatch(p.name)):
            for trial in sorted(p for p in subject.iterdir() if p.is_dir()):
                out[(subject.name.upper(), trial.name)] = trial
    return out


def read(root: Path) -> Corpus:
    corpus = Corpus(kind="disfa-plus", root=root, aus=AUS, sessions=[])
    labels = _trial_dirs(root, "labels")
    frames = {**_trial_dirs(root, "aligned"), **_trial_dirs(root, "images")}  # full frames where both exist
    for (subject, trial), folder in sorted(labels.items()):
        name = f"{subject}/{trial}"
        images = frames.get((subject, trial))
        if images is None:
            corpus.failures.append(InputFailure(str(folder), f"labels of {name} but no Images/{name}/ frames"))
            continue
        per_au = {}
        for p in walk_files(folder):
            m = _LABEL_NAME.fullmatch(p.name)
            if not m or int(m.group(1)) not in AUS:
                continue
            try:
                per_au[int(m.group(1))] = read_label_file(p)
            except (OSError, ValueError) as e:
                corpus.failures.append(InputFailure(str(p), f"{e}; {au_name(int(m.group(1)))} is null for {name}"))
        if not per_au:
            corpus.failures.append(InputFailure(str(folder), f"no readable AU file for {name}"))
            continue
        corpus.sessions.append(Session(
            key=relative_key(root, images), path=images, subject=subject, task=trial, kind="disfa-plus",
            labels=labels_frame(per_au, AUS), frame_files=numbered_images(images), truth=truth_sidecar(root, f"{subject}_{trial}"),
        ))
    for subject, trial in sorted(set(frames) - set(labels)):
        corpus.warnings.append(InputFailure(str(frames[(subject, trial)]), f"frames of {subject}/{trial} but no labels; skipped"))
    return corpus


register_corpus(CorpusSpec(
    "disfa-plus", AUS, read, disfa_splits, subject=SUBJECT, folds=THREE_FOLDS,
    expected="Labels/SN001/<trial>/AU1.txt and Images/SN001/<trial>/000.jpg",
))
