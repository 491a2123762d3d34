"""auhm: facial Action Unit intensities by heatmap regression, frame by frame, for whole video corpora.

The functions a notebook wants are here, loaded on first use (``import auhm`` itself loads no
torch)::

    import auhm

    result = auhm.annotate(["clip.mp4"], auhm.AnnotateConfig(model="runs/disfa/best.pt", out="clip.parquet"))
    predictions = auhm.read_predictions("clip.parquet")       # one row per frame: video, frame, AU01 …
    report = auhm.score(auhm.ScoreConfig("clip.parquet", "labels.parquet"))
    print(report.scores)                                       # rows ICC, MSE …; columns AU01 … and Avg.

    model, info = auhm.load_checkpoint("runs/disfa/best.pt")   # the model in eval mode, and what it was trained on
    fresh = auhm.build_model("adaptation", info["aus"], preset="small", backbone="runs/fan/best.pt")
    scores = auhm.au_scores(y_true, y_pred, info["aus"])       # (frames, AUs) arrays → the scores table

Everything else is in the subpackages, which follow the pipeline (see docs/ARCHITECTURE.md).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# Public name → the module that defines it.
_EXPORTS = {
    "annotate": "auhm.infer.annotate",
    "AnnotateConfig": "auhm.infer.annotate",
    "build_model": "auhm.models",
    "list_methods": "auhm.models",
    "load_checkpoint": "auhm.models",
    "au_scores": "auhm.metrics",
    "score": "auhm.metrics",
    "ScoreConfig": "auhm.metrics",
    "read_predictions": "auhm.io",
    "read_labels": "auhm.io",
}

__all__ = ["__version__", *_EXPORTS]


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'auhm' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
