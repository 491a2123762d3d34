"""Aff-Wild2, AU track: ``Annotations/AU_Detection_Challenge/Train_Set/<video>.txt`` and the videos.

Layout followed (the ABAW release): one annotation file per video and set (``Train_Set`` → split
train, ``Validation_Set`` → dev), a header line ``AU1,AU2,AU4,…`` then one line per video frame,
0/1 per AU and −1 where the frame is unannotated (null here). A video with two people is annotated
twice, ``<video>_left.txt`` and ``<video>_right.txt``. Frames come from
``cropped_aligned/<name>/00001.jpg`` (the released face crops, named as the annotation file) where
present, else from the video found anywhere under the root (``videos/``, ``batch1/``, ``batch2/``…)
by the name without ``_left``/``_right``; line k after the header is video frame k − 1 and crop
``k``. The labels are occurrence, not intensity: ``auhm score`` scores them as such. A two-person
video without its crops cannot be prepared (prepare follows one face and would not know which
side it is); its labels still score, the sides mapped onto face tracks by
:func:`auhm.metrics.sides.map_sides`. Each annotation file is its own subject.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.readers import Corpus, Session, find_dirs, numbered_images, relative_key, truth_sidecar, walk_files
from auhm.data.splits import TRAIN_DEV, round_robin
from auhm.errors import InputFailure
from auhm.targets import au_name, parse_au
from auhm.video.inputs import VIDEO_SUFFIXES

AUS = (1, 2, 4, 6, 7, 10, 12, 15, 23, 24, 25, 26)
SPLIT_OF_SET = {"train_set": "train", "validation_set": "dev"}
SIDE = re.compile(r"(.+)_(left|right)", re.IGNORECASE)
UNANNOTATED = -1


def read_annotation(path: Path) -> pd.DataFrame:
    """frame (0-based) + AUxx of one annotation file, −1 as null. ValueError names a bad line."""
    lines = Path(path).read_text(errors="replace").splitlines()
    if not lines:
        raise ValueError("empty annotation file")
    try:
        aus = [parse_au(c) for c in lines[0].strip().split(",")]
    except ValueError:
        raise ValueError(f"header {lines[0].strip()[:60]!r} is not AU1,AU2,…") from None
    rows = []
    for i, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        parts = line.strip().split(",")
        try:
            values = [int(float(p)) for p in parts]
        except ValueError:
            values = []
        if len(values) != len(aus) or any(v not in (0, 1, UNANNOTATED) for v in values):
            raise ValueError(f"line {i} is not {len(aus)} values of 0, 1 or -1: {line.strip()[:60]!r}")
        rows.append(values)
    table = np.asarray(rows, np.float32).reshape(-1, len(aus))
    table[table == UNANNOTATED] = np.nan
    out = pd.DataFrame({"frame": np.arange(len(table), dtype=np.int64)})
    for j, a in enumerate(aus):
        out[au_name(a)] = table[:, j]
    return out


def _videos(root: Path) -> dict[str, Path]:
    """{stem in lower case: video} for every video file under the root."""
    out: dict[str, Path] = {}
    for p in walk_files(root):
        if p.suffix.lower() in VIDEO_SUFFIXES:
            out.setdefault(p.stem.lower(), p)
    return out


def read(root: Path) -> Corpus:
    corpus = Corpus(kind="aff-wild2", root=root, aus=AUS, sessions=[])
    videos = _videos(root)
    crops = {p.name.lower(): p for top in find_dirs(root, r"cropped_aligned") for p in top.iterdir() if p.is_dir()}
    for p in walk_files(root):
        split = SPLIT_OF_SET.get(p.parent.name.lower())
        if p.suffix.lower() != ".txt" or split is None:
            continue
        name = p.stem
        side = SIDE.fullmatch(name)
        video = videos.get((side.group(1) if side else name).lower())
        crop_dir = crops.get(name.lower())
        if video is None and crop_dir is None:
            corpus.failures.append(InputFailure(str(p), f"no video {name.rsplit('_', 1)[0] if side else name}.* "
                                                         f"and no cropped_aligned/{name}/ under {root}"))
            continue
        try:
            table = read_annotation(p)
        except (OSError, ValueError) as e:
            corpus.failures.append(InputFailure(str(p), str(e)))
            continue
        labels = pd.DataFrame({"frame": table["frame"]})
        for a in AUS:
            labels[au_name(a)] = table[au_name(a)] if au_name(a) in table else np.float32(np.nan)
        if crop_dir is not None:
            frames = numbered_images(crop_dir, offset=-1)  # crop 00001.jpg is frame 0
            key, path = relative_key(root, crop_dir), crop_dir
        else:
            frames = None
            path = video
            rel = relative_key(root, video)
            key = f"{rel[: -len(video.name)]}{name}{video.suffix}"  # the annotation's name: one session per side
        task = side.group(2).lower() if side else ""
        corpus.sessions.append(Session(key=key, path=path, subject=name, task=task, kind="aff-wild2", labels=labels,
                                       split=split, frame_files=frames, truth=truth_sidecar(root, name), unpreparable=_needs_crops(path, task, frames, name)))
    return corpus


def _needs_crops(video: Path, side: str, frames, name: str) -> str | None:
    """Why a session cannot be prepared (one side of a two-person video without its crops), else None."""
    if frames is None and side:
        return (f"two people in {video.name}: preparing the {side} one needs its crops (cropped_aligned/{name}/), "
                "as prepare follows one face")
    return None


def affwild2_splits(subjects, corpus: Corpus | None = None) -> dict[str, str]:
    """Sessions take their split from their annotation set; others go round robin over train and dev."""
    return round_robin(subjects, TRAIN_DEV)


register_corpus(CorpusSpec(
    "aff-wild2", AUS, read, affwild2_splits,
    expected="Annotations/AU_Detection_Challenge/Train_Set/<video>.txt and the videos (or cropped_aligned/<video>/)",
))
