"""Synthetic AU-labelled corpora in the real datasets' on-disk layouts (``auhm synth``)."""

from auhm.synth.corpus import SynthConfig, SynthResult, make_corpus, parse_size
from auhm.synth.face_model import AU_MOVES, RENDERED_AUS, FaceModel, Identity
from auhm.synth.layouts import LAYOUTS, disfa_subject

__all__ = ["AU_MOVES", "LAYOUTS", "RENDERED_AUS", "FaceModel", "Identity", "SynthConfig", "SynthResult", "disfa_subject",
           "make_corpus", "parse_size"]
