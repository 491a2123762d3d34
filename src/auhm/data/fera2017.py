"""FERA 2017: ``FERA17_TR_<subject>_<task>_<view>.mp4`` and ``FERA17_TR_<subject>_<task>_<AU>_Int.csv``.

``TR`` sessions are the training split, ``VA`` the validation (dev) one; the nine views of a
session share its labels. Rows are ``frame,intensity``, a header row is skipped when present.
Frames are numbered from 1 (as in DISFA) unless a file starts at frame 0.
"""

from __future__ import annotations

import re
from pathlib import Path

from auhm.data.bp4d import SUBJECT, bp4d_subject
from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.layout import Layout, SessionPaths
from auhm.data.readers import Corpus, add_session, labels_frame, read_au_files, walk_files
from auhm.data.splits import TRAIN_DEV, round_robin
from auhm.errors import InputFailure
from auhm.targets import au_name

AUS = (1, 4, 6, 10, 12, 14, 17)
_VIDEO = re.compile(r"FERA17_(TR|VA)_([A-Z0-9]+)_([A-Z0-9]+)_(\w+?)\.(?:mp4|avi|mov|mkv)", re.IGNORECASE)
_INTENSITY = re.compile(r"FERA17_(TR|VA)_([A-Z0-9]+)_([A-Z0-9]+)_AU_?(\d+)_Int\.csv", re.IGNORECASE)
SPLIT_OF_PREFIX = {"TR": "train", "VA": "dev"}


def read(root: Path) -> Corpus:
    corpus = Corpus(kind="fera2017", root=root, aus=AUS, sessions=[])
    videos, intensity = [], {}
    for p in walk_files(root):
        if m := _VIDEO.fullmatch(p.name):
            videos.append((m.group(1).upper(), m.group(2).upper(), m.group(3).upper(), m.group(4), p))
        elif m := _INTENSITY.fullmatch(p.name):
            intensity.setdefault((m.group(1).upper(), m.group(2).upper(), m.group(3).upper()), {})[int(m.group(4))] = p
    cache: dict[tuple, object] = {}
    for prefix, subject, task, view, path in videos:
        session_id = (prefix, subject, task)
        name = f"FERA17_{prefix}_{subject}_{task}"
        found = intensity.get(session_id, {})
        session = dict(subject=subject, task=f"{task}_{view}", split=SPLIT_OF_PREFIX[prefix])
        if not found:
            add_session(corpus, path, None, f"no intensity files {name}_AUxx_Int.csv", **session)
            continue
        if session_id not in cache:
            read = read_au_files(found, AUS, name, lambda au: path.parent / f"{name}_{au_name(au)}_Int.csv", corpus.warnings)
            # FERA files number frames from 1 unless a file starts at 0
            per_au = {au: (frames - (1 if frames.min() >= 1 else 0), values) for au, (frames, values) in read.items()}
            cache[session_id] = labels_frame(per_au, AUS) if per_au else None
        add_session(corpus, path, cache[session_id], f"no readable intensity file for {name}", **session)
    with_video = {(p, s, t) for p, s, t, _, _ in videos}
    for prefix, subject, task in sorted(set(intensity) - with_video):
        corpus.warnings.append(InputFailure(f"FERA17_{prefix}_{subject}_{task}", "intensity labels but no video; skipped"))
    return corpus


def fera2017_splits(subjects, corpus: Corpus | None = None) -> dict[str, str]:
    """Sessions take their split from their file prefix; subjects without one go round robin over train and dev."""
    return round_robin(subjects, TRAIN_DEV)


class Fera2017Layout(Layout):
    """``auhm synth --layout fera2017``: view 1 only::

        Video/FERA17_TR_F001_T1_1.mp4                       H.264 (MPEG-4 Part 2 without libx264)
        AU_Int/FERA17_TR_F001_T1_AU01_Int.csv               "frame,intensity", no header, frames from 1
        subjects and tasks as BP4D's
    """

    name, aus = "fera2017", AUS

    def session(self, index: int) -> SessionPaths:
        subject, task = bp4d_subject(index)
        stem = f"FERA17_TR_{subject}_{task}_1"
        return SessionPaths(subject, task, f"Video/{stem}.mp4", stem)

    def label_path(self, session: SessionPaths, au: int) -> str:
        return f"AU_Int/FERA17_TR_{session.subject}_{session.task}_{au_name(au)}_Int.csv"


register_corpus(CorpusSpec(
    "fera2017", AUS, read, fera2017_splits, subject=SUBJECT, layout=Fera2017Layout,
    expected="FERA17_TR_F001_T1_1.mp4 and FERA17_TR_F001_T1_AU01_Int.csv",
))
