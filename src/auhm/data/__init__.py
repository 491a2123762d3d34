"""Corpora in, training shards out: one registered spec per corpus (DISFA, BP4D, FERA 2017,
synthetic, CSV: its AUs, reader, split rule, subject ids and synthetic layout; ``corpora``),
``prepare_corpus``, and the shard format training reads; landmark corpora (300-W, 300W-LP, WFLW,
LS3D-W) through ``landmark_formats`` and ``prepare_landmarks``."""

from auhm.data.corpora import CorpusSpec, corpus_kinds, corpus_spec, register_corpus
from auhm.data.prepare import PrepareConfig, PrepareReport, prepare_corpus
from auhm.data.readers import Corpus, Session, load_labels, load_sessions
from auhm.data.shards import ShardDataset, ShardRows, list_shards

__all__ = [
    "Corpus",
    "CorpusSpec",
    "PrepareConfig",
    "PrepareReport",
    "Session",
    "ShardDataset",
    "ShardRows",
    "corpus_kinds",
    "corpus_spec",
    "list_shards",
    "load_labels",
    "load_sessions",
    "prepare_corpus",
    "register_corpus",
]
