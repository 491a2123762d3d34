"""Landmark corpora as distributed (300-W, 300W-LP, WFLW, LS3D-W): one registered scanner per format.

A scanner lists a corpus's faces — the image, a loader of its 68 iBUG points, and the group of
faces that must share a split (one photo's faces, one face's synthesized poses, one video's
frames) — and the files it could not pair. Points are read by ``Face.load`` at preparation, so
that a malformed file fails alone and the others go on. Loaders return (68, 2) float64 x, y in
0-based pixels (pixel centres on the integer grid, as everywhere in auhm); each format module
states the origin its files use.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import Callable, Iterator

import numpy as np

from auhm.data.readers import IMAGE_SUFFIXES, relative_key, walk_files
from auhm.errors import InputFailure, UsageError
from auhm.registry import Registry

N_POINTS = 68


@dataclass(frozen=True)
class Face:
    """One annotated face of a corpus."""

    key: str  # the image's path relative to the root (``#k`` appended for the k-th face of a listed image)
    image: Path
    group: str  # faces that must land in the same split
    source: str  # the annotation (file, or list file and line) a failure of ``load`` names
    load: Callable[[], np.ndarray]  # → (68, 2) 0-based pixel points; raises ValueError / OSError


@dataclass
class LandmarkCorpus:
    format: str
    root: Path
    faces: list[Face] = field(default_factory=list)
    failures: list[InputFailure] = field(default_factory=list)  # files the scan could not pair or parse


@dataclass(frozen=True)
class LandmarkFormat:
    name: str
    scan: Callable[[Path], LandmarkCorpus]
    layout: str  # what a root of this format holds, for the "nothing found" message


FORMATS: Registry[Callable[[Path], LandmarkCorpus]] = Registry(
    "landmark format", ["auhm.data.ibug300w", "auhm.data.ls3dw", "auhm.data.w300lp", "auhm.data.wflw"])


def register_format(name: str, layout: str):
    """Function decorator: ``scan(root) -> LandmarkCorpus`` becomes the reader of ``--format name``."""
    return FORMATS.register(name, layout=layout)


def landmark_formats() -> list[str]:
    return FORMATS.names()


def landmark_format(name: str) -> LandmarkFormat:
    """The format called ``name``; UsageError naming the formats for an unknown one."""
    entry = FORMATS.entry(name)
    return LandmarkFormat(entry.name, entry.obj, entry.meta["layout"])


def scan_landmark_corpus(name: str, root: str | os.PathLike) -> LandmarkCorpus:
    """Every face of a landmark corpus root, sorted by key; usage errors for a bad format or root."""
    fmt = landmark_format(name)
    root = Path(root)
    if not root.is_dir():
        raise UsageError(f"{root}: no such directory (a landmark corpus root is a folder)")
    corpus = fmt.scan(root)
    if not corpus.faces and not corpus.failures:
        raise UsageError(f"{root}: no {name} faces found (expected {fmt.layout})")
    corpus.faces.sort(key=lambda f: f.key)
    return corpus


def check_points(points: np.ndarray) -> np.ndarray:
    """(68, 2) float64 finite points, or a ValueError saying what is wrong."""
    p = np.asarray(points, np.float64)
    if p.ndim != 2 or p.shape[1] != 2:
        raise ValueError(f"points of shape {tuple(p.shape)}, expected ({N_POINTS}, 2)")
    if len(p) != N_POINTS:
        raise ValueError(f"{len(p)} points, expected {N_POINTS}")
    if not np.isfinite(p).all():
        raise ValueError("non-finite coordinates")
    return p


_NUMBERED = re.compile(r"^(?P<base>.*\d)_\d+$")


def photo_group(key: str) -> str:
    """The group of an image by the corpora's naming: which images must share a split.

    A file named by a bare number is a video frame: its folder is the group (300VW in LS3D-W).
    ``<photo>_<n>`` with a photo name ending in a digit is face or variant n of that photo, so the
    suffixes come off while they do (HELEN/AFW ``100032540_1``, iBUG ``image_003_1``, 300W-LP
    ``AFW_134212_1_0`` and its flip, synthetic ``id00042_0003``); the folder is left out, which
    keeps 300W-LP's ``AFW`` and ``AFW_Flip`` copies of one face together. Other names
    (LFPW ``image_0001``, 300-W ``indoor_001``) are groups of one.
    """
    path = PurePosixPath(key)
    stem = path.stem
    if stem.isdigit():
        return str(path.parent)
    while (m := _NUMBERED.match(stem)) is not None:
        stem = m.group("base")
    return stem


def paired_files(root: Path, annotation_suffix: str) -> Iterator[tuple[Path | None, Path | None]]:
    """(image, annotation) pairs of files side by side with one stem in one folder; None for a
    missing partner. Suffixes are matched case-insensitively; other files are ignored."""
    by_stem: dict[tuple[Path, str], list[Path | None]] = {}
    for path in walk_files(root):
        suffix = path.suffix.lower()
        slot = 0 if suffix in IMAGE_SUFFIXES else 1 if suffix == annotation_suffix else None
        if slot is None:
            continue
        pair = by_stem.setdefault((path.parent, path.stem), [None, None])
        if pair[slot] is None:  # x.jpg and x.png: the first in sorted order
            pair[slot] = path
    for _, (image, annotation) in sorted(by_stem.items()):
        yield image, annotation


def side_by_side(root: Path, annotation_suffix: str, reader: Callable[[Path], np.ndarray], name: str) -> LandmarkCorpus:
    """The corpus of images each with an annotation file beside it (300-W's .pts, LS3D-W's .t7)."""
    corpus = LandmarkCorpus(name, root)
    for image, annotation in paired_files(root, annotation_suffix):
        if annotation is None:
            corpus.failures.append(InputFailure(str(image), f"no annotation (expected {image.with_suffix(annotation_suffix).name} beside it)"))
        elif image is None:
            corpus.failures.append(InputFailure(str(annotation), "no image beside it"))
        else:
            key = relative_key(root, image)
            corpus.faces.append(Face(key, image, photo_group(key), str(annotation), partial(read_checked, reader, annotation)))
    return corpus


def read_checked(reader: Callable[[Path], np.ndarray], path: Path) -> np.ndarray:
    return check_points(reader(path))
