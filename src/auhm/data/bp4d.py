"""BP4D / FERA 2015: image folders ``F001/T1/2440.jpg`` and per-AU intensity CSVs.

Intensity files sit in a folder per AU (``AU Intensity Codes3.0/AU06/F001_T1_AU06.csv`` or
``…/AU06/F001_T1.csv``), two columns ``frame,intensity``, no header, 9 = unlabelled. Frame
indices are the numbers in the image names (any offset), which the label files' frame
column matches; a truth-landmark sidecar (``auhm_truth/F001_T1.parquet``) counts the
sequence's frames from 0 in that order. The occurrence files (``AUCoding/F001_T1.csv``) are not intensities and are
ignored.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.layout import JpegFolderWriter, Layout, SessionPaths
from auhm.data.readers import IMAGE_SUFFIXES, Corpus, add_session, labels_frame, read_au_files, walk_files
from auhm.data.splits import TRAIN_DEV, round_robin
from auhm.errors import InputFailure
from auhm.targets import au_name

AUS = (6, 10, 12, 14, 17)  # BP4D's intensity-coded AUs (FERA 2015's too)
SUBJECT = r"(?<![A-Za-z0-9])([FM]\d{3})(?![0-9])"  # F001, M012: BP4D and the FERA challenges
_SUBJECT = re.compile(r"[FM]\d{3}", re.IGNORECASE)
_TASK = re.compile(r"T\d+", re.IGNORECASE)
_INTENSITY = re.compile(r"([FM]\d{3})_(T\d+)(?:_AU?(\d+))?(?:_int)?\.csv", re.IGNORECASE)
_AU_FOLDER = re.compile(r"AU_?(\d+)", re.IGNORECASE)
_NUMBER = re.compile(r"(\d+)")


def find_sequences(root: Path) -> dict[tuple[str, str], tuple[Path, list[tuple[int, Path]]]]:
    """{(subject, task): (folder, [(frame, image) sorted by frame])} for every image folder."""
    images: dict[Path, list[tuple[int, Path]]] = {}
    for p in walk_files(root):
        if p.suffix.lower() in IMAGE_SUFFIXES and _TASK.fullmatch(p.parent.name) and _SUBJECT.fullmatch(p.parent.parent.name):
            m = _NUMBER.findall(p.stem)
            if m:
                images.setdefault(p.parent, []).append((int(m[-1]), p))
    return {
        (folder.parent.name.upper(), folder.name.upper()): (folder, sorted(files))
        for folder, files in sorted(images.items())
    }


def find_intensity_files(root: Path) -> dict[tuple[str, str], dict[int, Path]]:
    """{(subject, task): {au: file}}; the AU comes from the file name or its AU folder."""
    out: dict[tuple[str, str], dict[int, Path]] = {}
    for p in walk_files(root):
        m = _INTENSITY.fullmatch(p.name)
        if not m:
            continue
        folder = _AU_FOLDER.fullmatch(p.parent.name)
        au = m.group(3) or (folder.group(1) if folder else None)
        if au is None:
            continue  # occurrence coding, not intensity
        out.setdefault((m.group(1).upper(), m.group(2).upper()), {})[int(au)] = p
    return out


def _expected_file(sibling: Path, subject: str, task: str, au: int) -> Path:
    """Where a missing AU file would be, judged from one found for the same session."""
    name = f"{subject}_{task}_{au_name(au)}.csv"
    if _AU_FOLDER.fullmatch(sibling.parent.name):
        return sibling.parent.parent / au_name(au) / name
    return sibling.parent / name


def read(root: Path) -> Corpus:
    corpus = Corpus(kind="bp4d", root=root, aus=AUS, sessions=[])
    sequences = find_sequences(root)
    intensity = find_intensity_files(root)
    for (subject, task), (folder, files) in sequences.items():
        found = intensity.get((subject, task), {})
        session = dict(subject=subject, task=task, frame_files=files, truth_stem=f"{subject}_{task}")
        if not found:
            add_session(corpus, folder, None, f"no intensity files for {subject}_{task}", **session)
            continue
        sibling = next(iter(found.values()))
        per_au = read_au_files(found, AUS, f"{subject}_{task}", lambda au: _expected_file(sibling, subject, task, au), corpus.warnings)
        add_session(corpus, folder, labels_frame(per_au, AUS) if per_au else None, f"no readable intensity file for {subject}_{task}",
                    **session)
    for subject, task in sorted(set(intensity) - set(sequences)):
        corpus.warnings.append(InputFailure(f"{subject}_{task}", "intensity labels but no image folder; skipped"))
    return corpus


def bp4d_splits(subjects: Sequence[str], corpus: Corpus | None = None) -> dict[str, str]:
    """BP4D / FERA 2015 official split: odd subject numbers train, even ones dev."""
    out, unknown = {}, []
    for s in subjects:
        m = re.search(r"(\d+)$", s)
        if m:
            out[s] = TRAIN_DEV[1 - int(m.group(1)) % 2]
        else:
            unknown.append(s)
    out.update(round_robin(unknown, TRAIN_DEV))
    return out


def bp4d_subject(index: int) -> tuple[str, str]:
    """(subject, task) of the index-th BP4D-style session: F001/T1, M001/T1, F002/T2, M002/T2 …"""
    return f"{'FM'[index % 2]}{index // 2 + 1:03d}", f"T{(index // 2) % 2 + 1}"


class Bp4dLayout(Layout):
    """``auhm synth --layout bp4d``: one session (subject, task) per subject::

        BP4D/F001/T1/0001.jpg …                             JPEG frames, numbered from 1
        AU Intensity Codes3.0/AU06/F001_T1_AU06.csv         "frame,intensity", no header, 9 = unlabelled
        subjects F001, M001, F002, M002 …; tasks T1, T1, T2, T2, T1 … (both task names occur);
        the first frame and one short run per session are unlabelled (9)
    """

    name, aus = "bp4d", AUS
    marks_unlabelled = True

    def session(self, index: int) -> SessionPaths:
        subject, task = bp4d_subject(index)
        return SessionPaths(subject, task, f"BP4D/{subject}/{task}", f"{subject}_{task}")

    def frame_sink(self, root: Path, session: SessionPaths, fps: float, width: int, height: int, quality: int):
        return JpegFolderWriter(root / session.video, quality=100 - 3 * quality)

    def label_path(self, session: SessionPaths, au: int) -> str:
        name = au_name(au)
        return f"AU Intensity Codes3.0/{name}/{session.subject}_{session.task}_{name}.csv"


register_corpus(CorpusSpec(
    "bp4d", AUS, read, bp4d_splits, subject=SUBJECT, layout=Bp4dLayout,
    expected="F001/T1/<frame>.jpg and AU06/F001_T1_AU06.csv intensity files",
))
