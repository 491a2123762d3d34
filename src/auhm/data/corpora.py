"""Corpus kind → everything auhm knows of it, in one spec: its AUs, its reader, its split rule,
the subject id in its paths, and the layout ``auhm synth`` writes it in.

Each corpus module registers its spec (in the generic :class:`auhm.registry.Registry`), so
adding a corpus touches its own module and the registry's list of corpus modules only. Lists of
kinds are sorted, so they do not depend on which module happened to be imported first.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Callable, Sequence

from auhm.registry import Registry

if TYPE_CHECKING:
    from auhm.data.layout import Layout
    from auhm.data.readers import Corpus


@dataclass(frozen=True)
class CorpusSpec:
    name: str  # the kind: ``auhm prepare NAME``, ``auhm score --kind NAME``
    aus: tuple[int, ...]  # the AUs its labels code (empty: the table itself says, as a manifest CSV does)
    read: Callable[..., "Corpus"]  # (root, **options it names, e.g. right_camera) -> Corpus, splits not yet assigned
    split: Callable[[Sequence[str], "Corpus"], dict[str, str]]  # subjects without a split -> their split
    expected: str  # what its files look like, for the error when none is found
    subject: str | None = None  # regex whose group 1 is a subject id in a video path (`auhm score --by subject`)
    folds: tuple[str, ...] = ()  # split names that are folds, in order (k-fold corpora)
    layout: type["Layout"] | None = None  # its on-disk layout as ``auhm synth --layout NAME`` writes it


CORPORA: Registry[CorpusSpec] = Registry(
    "corpus kind", ["auhm.data.affwild2", "auhm.data.bp4d", "auhm.data.csv_manifest", "auhm.data.disfa", "auhm.data.disfa_plus",
                    "auhm.data.feafa_plus", "auhm.data.fera2017", "auhm.data.synth", "auhm.data.unbc"],
    fold_case=True)


def register_corpus(spec: CorpusSpec) -> CorpusSpec:
    """Register a corpus under ``spec.name`` (matched in any case)."""
    return CORPORA.register(spec.name, spec)


def corpus_kinds() -> list[str]:
    """The registered kinds, sorted: the same list whatever imported them first."""
    return CORPORA.names()


def corpus_spec(kind: str) -> CorpusSpec:
    """The spec of a corpus kind (any case); UsageError naming the kinds for an unknown one."""
    return CORPORA.get(kind)


def read_options(spec: CorpusSpec, **options) -> dict:
    """The reading options this corpus's reader takes (DISFA's right camera), the others dropped."""
    accepted = inspect.signature(spec.read).parameters
    return {k: v for k, v in options.items() if k in accepted}


def synth_layouts() -> dict[str, type["Layout"]]:
    """Layout name → writer, for every corpus ``auhm synth`` can write."""
    return {e.name: e.obj.layout for e in CORPORA.entries() if e.obj.layout is not None}


def subject_of(video: str) -> str:
    """The subject id in a corpus video path (SN001, F001, M012 …: a corpus's subject pattern,
    kinds in sorted order), else the video's stem."""
    path = str(video).replace("\\", "/")
    for pattern in dict.fromkeys(e.obj.subject for e in CORPORA.entries() if e.obj.subject):
        m = re.search(pattern, path)
        if m:
            return m.group(1).upper()
    return PurePosixPath(path).stem
