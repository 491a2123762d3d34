"""Corpora in, training shards out: readers of DISFA, BP4D, FERA 2017, synthetic and CSV corpora,
subject-independent splits, ``prepare_corpus``, and the shard format training reads; landmark
corpora (300-W, 300W-LP, WFLW, LS3D-W) through ``landmark_formats`` and ``prepare_landmarks``."""

from auhm.data.prepare import PrepareConfig, PrepareReport, prepare_corpus
from auhm.data.readers import KINDS, Corpus, Session, load_labels, load_sessions
from auhm.data.shards import ShardDataset, ShardRows, list_shards

__all__ = [
    "KINDS",
    "Corpus",
    "PrepareConfig",
    "PrepareReport",
    "Session",
    "ShardDataset",
    "ShardRows",
    "list_shards",
    "load_labels",
    "load_sessions",
    "prepare_corpus",
]
