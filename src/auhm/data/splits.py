"""Subject-independent splits: every frame of a subject lands in the same split, never by frame.

DISFA uses the standard 3-fold partition of the AU-detection literature (DESIGN.md); BP4D /
FERA 2015 the official train (odd subjects) / dev (even) split; FERA 2017 the TR / VA prefix.
Subjects no list knows (synthetic ones, a manifest without splits) go round robin over the
corpus's split names, sorted, so that any three or more subjects give three non-empty folds.
Landmark corpora name no subjects: their groups of faces go to train or dev at random, seeded.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from auhm.data.readers import Corpus

DISFA_FOLDS = ("part1", "part2", "part3")
DISFA_PARTS: dict[str, tuple[str, ...]] = {
    "part1": ("SN002", "SN010", "SN001", "SN026", "SN027", "SN032", "SN030", "SN009", "SN016"),
    "part2": ("SN013", "SN018", "SN011", "SN028", "SN012", "SN006", "SN031", "SN021", "SN024"),
    "part3": ("SN003", "SN029", "SN023", "SN025", "SN008", "SN005", "SN007", "SN017", "SN004"),
}
TRAIN_DEV = ("train", "dev")
HELDOUT_SPLIT = "test"


def round_robin(subjects: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Sorted subjects dealt in turn to ``names``."""
    return {s: names[i % len(names)] for i, s in enumerate(sorted(subjects))}


def disfa_splits(subjects: Sequence[str]) -> dict[str, str]:
    """The standard part of each DISFA subject; unknown subjects round robin over the parts."""
    known = {s: part for part, members in DISFA_PARTS.items() for s in members}
    out = {s: known[s.upper()] for s in subjects if s.upper() in known}
    out.update(round_robin([s for s in subjects if s.upper() not in known], DISFA_FOLDS))
    return out


def bp4d_splits(subjects: Sequence[str]) -> dict[str, str]:
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


def synth_splits(subjects: Sequence[str], heldout: Sequence[str] = ()) -> dict[str, str]:
    """Synthetic subjects round robin over three folds; held-out ones go to ``test``."""
    held = {h.upper() for h in heldout}
    out = round_robin([s for s in subjects if s.upper() not in held], DISFA_FOLDS)
    out.update({s: HELDOUT_SPLIT for s in subjects if s.upper() in held})
    return out


def random_holdout(groups: Sequence[str], fraction: float, seed: int) -> dict[str, str]:
    """Groups (a photo's faces, a video's frames, a synthetic identity's images) dealt at random to
    ``train`` or ``dev``: ``fraction`` of them to dev, at least one when there are two or more.
    The same groups and seed give the same split whatever order the groups come in."""
    names = sorted(set(groups))
    n_dev = max(1, int(round(fraction * len(names)))) if len(names) > 1 and fraction > 0 else 0
    dev = {names[i] for i in np.random.default_rng(seed).permutation(len(names))[:n_dev]}
    return {g: TRAIN_DEV[1] if g in dev else TRAIN_DEV[0] for g in names}


def assign_splits(corpus: "Corpus") -> None:
    """Give every session without a split its subject's split; fill ``corpus.splits`` / ``folds``.

    Sessions a reader already placed (FERA 2017 by file prefix, a manifest's split column)
    keep their split.
    """
    free = sorted({s.subject for s in corpus.sessions if not s.split})
    if corpus.kind == "disfa":
        by_subject = disfa_splits(free)
    elif corpus.kind == "bp4d":
        by_subject = bp4d_splits(free)
    elif corpus.kind == "fera2017":
        by_subject = round_robin(free, TRAIN_DEV)
    else:  # synth, csv
        by_subject = synth_splits(free, corpus.heldout)
    for s in corpus.sessions:
        if not s.split:
            s.split = by_subject[s.subject]
    splits: dict[str, set[str]] = {}
    for s in corpus.sessions:
        splits.setdefault(s.split, set()).add(s.subject)
    corpus.splits = {name: sorted(members) for name, members in sorted(splits.items())}
    folds = [name for name in DISFA_FOLDS if name in corpus.splits]
    corpus.folds = folds if folds else None
