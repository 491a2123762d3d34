"""``auhm evaluate`` on a corpus other than the one trained on: the AUs both code, the ones left
out, and the subjects both corpora hold (by ``--exclude-subjects`` or :mod:`auhm.data.overlap`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from auhm.data.overlap import shared_subjects
from auhm.errors import UsageError
from auhm.targets import au_name


@dataclass
class CrossCorpus:
    trained_on: str | None  # the checkpoint's corpus kind, when known
    evaluated_on: str | None
    aus: list[int]  # scored: in the checkpoint and coded by the corpus, the checkpoint's order
    left_out: dict[str, list[str]] = field(default_factory=dict)  # why → AU names
    excluded: list[str] = field(default_factory=list)  # subjects left out of the scores
    rule: str = ""  # why those subjects

    @property
    def other_corpus(self) -> bool:
        return self.trained_on is not None and self.evaluated_on is not None and self.trained_on != self.evaluated_on

    def lines(self) -> list[str]:
        """What ``auhm evaluate`` says of it, one line each."""
        out = []
        if self.other_corpus:
            out.append(f"trained on {self.trained_on}, evaluated on {self.evaluated_on}: scoring the AUs both code "
                       f"({', '.join(au_name(a) for a in self.aus)})")
        out += [f"AUs left out, {why}: {', '.join(names)}" for why, names in self.left_out.items()]
        if self.excluded:
            out.append(f"subjects left out ({self.rule}): {', '.join(self.excluded)}")
        return out


def trained_corpus(info: dict) -> str | None:
    """The corpus kind a checkpoint was trained on: recorded in it, else the manifest of its training data."""
    if info.get("corpus"):
        return str(info["corpus"])
    data = (info.get("train_config") or {}).get("data")
    try:
        return json.loads((Path(data) / "manifest.json").read_text()).get("kind") if data else None
    except (OSError, ValueError):
        return None


def plan(info: dict, manifest: dict, subjects, exclude: tuple[str, ...] = ()) -> CrossCorpus:
    """The AUs and subjects to score a checkpoint on a prepared corpus (``manifest``, its ``subjects``)."""
    trained_on, evaluated_on = trained_corpus(info), manifest.get("kind")
    ckpt_aus = [int(a) for a in info["aus"]]
    corpus_aus = [int(a) for a in manifest.get("aus") or []]
    aus = [a for a in ckpt_aus if a in corpus_aus]
    if not aus:
        raise UsageError(f"the checkpoint ({', '.join(map(au_name, ckpt_aus))}) and the corpus "
                         f"({', '.join(map(au_name, corpus_aus)) or 'no AUs'}) share no AU")
    left_out = {"not coded by the corpus": [au_name(a) for a in ckpt_aus if a not in corpus_aus],
                "not predicted by the checkpoint": [au_name(a) for a in corpus_aus if a not in ckpt_aus]}
    cross = CrossCorpus(trained_on, evaluated_on, aus, {k: v for k, v in left_out.items() if v})
    present = {str(s).upper(): str(s) for s in subjects}
    if exclude:
        unknown = [s for s in exclude if s.upper() not in present]
        if unknown:
            raise UsageError(f"--exclude-subjects {', '.join(unknown)}: not subjects of this corpus "
                             f"(it has {', '.join(sorted(present.values())[:8])}{' …' if len(present) > 8 else ''})")
        cross.excluded, cross.rule = sorted(present[s.upper()] for s in exclude), "--exclude-subjects"
    elif cross.other_corpus:
        cross.excluded = shared_subjects(trained_on, evaluated_on, present.values(), info.get("train_subjects"))
        cross.rule = f"the people {trained_on} and {evaluated_on} share"
    return cross
