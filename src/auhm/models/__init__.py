"""The paper's model family behind one registry: ``build_model(method, aus, preset)``.

Every model's forward returns a dict: ``"heatmaps"`` (heatmap methods), ``"intensities"``
(regression), ``"landmark_heatmaps"`` (transfer methods, from the backbone's single pass).
"""

from auhm.models.base import PRESETS, AUModel, Preset, get_preset
from auhm.models.checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from auhm.models.registry import PAPER_TABLE5, build_model, list_methods, register

__all__ = [
    "AUModel",
    "PAPER_TABLE5",
    "PRESETS",
    "Preset",
    "build_model",
    "get_preset",
    "list_methods",
    "load_checkpoint",
    "read_checkpoint_info",
    "register",
    "save_checkpoint",
]
