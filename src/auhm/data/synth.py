"""A corpus written by ``auhm synth``: the DISFA layout plus true landmarks in ``auhm_truth/``.

``auhm_truth/manifest.json`` may name held-out subjects (``"heldout": [...]``); they form the
``test`` split, the others are dealt round robin over part1–part3.
"""

from __future__ import annotations

import json
from pathlib import Path

from auhm.data import disfa
from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.readers import Corpus
from auhm.data.splits import THREE_FOLDS, three_folds
from auhm.errors import InputFailure
from auhm.face.truth_backend import TRUTH_DIR


def read(root: Path, right_camera: bool = False) -> Corpus:
    corpus = disfa.read(root, right_camera=right_camera, kind="synth")
    manifest = root / TRUTH_DIR / "manifest.json"
    if manifest.is_file():
        try:
            info = json.loads(manifest.read_text())
            corpus.heldout = tuple(str(s).upper() for s in info.get("heldout", []) or [])
        except (ValueError, AttributeError) as e:
            corpus.warnings.append(InputFailure(str(manifest), f"unreadable ({e}); no held-out subjects"))
    for s in corpus.sessions:
        if s.truth is None:
            corpus.warnings.append(InputFailure(str(root / TRUTH_DIR / f"{s.path.stem}.parquet"), "missing true-landmark sidecar"))
    return corpus


register_corpus(CorpusSpec(
    "synth", disfa.AUS, read, three_folds, subject=disfa.SUBJECT, folds=THREE_FOLDS,
    expected="the DISFA layout written by `auhm synth`",
))
