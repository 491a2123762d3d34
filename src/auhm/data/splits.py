"""Subject-independent splits: every frame of a subject lands in the same split, never by frame.

Each corpus names its rule in its spec (:mod:`auhm.data.corpora`): DISFA its standard 3-fold
partition, BP4D / FERA 2015 the official train (odd subjects) / dev (even) split, FERA 2017 the
TR / VA prefix of its files. Subjects no list knows (synthetic ones, a manifest without splits)
go round robin over the three folds, sorted, so that any three or more subjects give three
non-empty folds. Landmark corpora name no subjects: their groups of faces go to train or dev at
random, seeded.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

if TYPE_CHECKING:
    from auhm.data.readers import Corpus

THREE_FOLDS = ("part1", "part2", "part3")
TRAIN_DEV = ("train", "dev")
HELDOUT_SPLIT = "test"


def round_robin(subjects: Sequence[str], names: Sequence[str]) -> dict[str, str]:
    """Sorted subjects dealt in turn to ``names``."""
    return {s: names[i % len(names)] for i, s in enumerate(sorted(subjects))}


def three_folds(subjects: Sequence[str], corpus: "Corpus | None" = None) -> dict[str, str]:
    """Subjects round robin over three folds; the corpus's held-out subjects go to ``test``."""
    held = {h.upper() for h in (corpus.heldout if corpus is not None else ())}
    out = round_robin([s for s in subjects if s.upper() not in held], THREE_FOLDS)
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
    """Give every session without a split its subject's split, by the corpus's rule; fill
    ``corpus.splits`` and ``corpus.folds``.

    Sessions a reader already placed (FERA 2017 by file prefix, a manifest's split column)
    keep their split.
    """
    from auhm.data.corpora import corpus_spec

    spec = corpus_spec(corpus.kind)
    free = sorted({s.subject for s in corpus.sessions if not s.split})
    by_subject = spec.split(free, corpus)
    for s in corpus.sessions:
        if not s.split:
            s.split = by_subject[s.subject]
    splits: dict[str, set[str]] = {}
    for s in corpus.sessions:
        splits.setdefault(s.split, set()).add(s.subject)
    corpus.splits = {name: sorted(members) for name, members in sorted(splits.items())}
    folds = [name for name in spec.folds if name in corpus.splits]
    corpus.folds = folds if folds else None
