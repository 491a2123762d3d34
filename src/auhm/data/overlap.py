"""Corpora that recorded the same people under the same subject ids: a model trained on one has
seen those people of the other, so a cross-corpus evaluation leaves them out."""

from __future__ import annotations

from typing import Iterable

SAME_PEOPLE = (
    frozenset({"disfa", "disfa-plus"}),  # DISFA+'s 9 subjects are DISFA subjects
    frozenset({"bp4d", "fera2017"}),  # FERA 2015 and 2017 are built from BP4D's people
)


def shared_subjects(trained_on: str | None, evaluated_on: str | None, subjects: Iterable[str],
                    trained_subjects: Iterable[str] | None = None) -> list[str]:
    """The evaluation ``subjects`` the training corpus also holds: by id, for the same corpus or a pair
    of ``SAME_PEOPLE``; all of them when the pair shares people and the trained subjects are not known."""
    subjects = sorted(set(subjects))
    if not trained_on or not evaluated_on:
        return []
    if trained_on != evaluated_on and frozenset({trained_on, evaluated_on}) not in SAME_PEOPLE:
        return []
    if trained_subjects is None:
        if trained_on == evaluated_on:
            return []  # the checkpoint's own split decides
        if "disfa-plus" == evaluated_on:
            from auhm.data.disfa import PARTS

            return [s for s in subjects if s.upper() in {m for part in PARTS.values() for m in part}]
        return subjects
    trained = {s.upper() for s in trained_subjects}
    return [s for s in subjects if s.upper() in trained]
