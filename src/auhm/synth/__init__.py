"""Synthetic AU-labelled corpora in the real datasets' on-disk layouts (``auhm synth``)."""

from auhm.data.disfa import disfa_subject
from auhm.synth.corpus import LAYOUTS, SynthConfig, SynthResult, make_corpus, parse_size
from auhm.synth.face_model import AU_MOVES, RENDERED_AUS, FaceModel, Identity

__all__ = ["AU_MOVES", "LAYOUTS", "RENDERED_AUS", "FaceModel", "Identity", "SynthConfig", "SynthResult", "disfa_subject",
           "make_corpus", "parse_size"]
