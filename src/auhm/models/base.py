"""What every auhm model shares: the size presets and the frozen-part handling."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Iterable

import torch
import torch.nn as nn

from auhm.targets.au_table import MAX_INTENSITY


@dataclass(frozen=True)
class Preset:
    """Sizes of the heatmap networks; ``paper`` is §3.3, ``small`` the same design for CPU work."""

    name: str
    input_size: int  # crop side in pixels
    channels: int  # ConvBlock width from conv4 on
    stem_channels: int  # output of the 7×7/2 conv
    depth: int  # hourglass levels
    map_size: int  # heatmap side = input_size / 4

    def to_dict(self) -> dict:
        return asdict(self)


PRESETS: dict[str, Preset] = {
    "paper": Preset("paper", input_size=256, channels=128, stem_channels=64, depth=4, map_size=64),
    "small": Preset("small", input_size=128, channels=64, stem_channels=32, depth=3, map_size=32),
}


def get_preset(name: str) -> Preset:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r} (known: {', '.join(PRESETS)})") from None


def freeze(module: nn.Module) -> nn.Module:
    """No gradients and eval-mode BatchNorm; AUModel.train keeps it that way."""
    for p in module.parameters():
        p.requires_grad_(False)
    module.eval()
    module._auhm_frozen = True
    return module


def read_intensities(model: nn.Module, outputs: dict[str, torch.Tensor], scaled: bool = True) -> torch.Tensor:
    """AU intensities (B, N) in [0, 5] from a model's outputs: the regressed values, or each heatmap's
    maximum (paper §3.4) times the model's fitted ``intensity_scale`` (when it has one)."""
    if getattr(model, "output_kind", "heatmap") == "regression":
        return outputs["intensities"].float().clamp(0.0, MAX_INTENSITY)
    peaks = outputs["heatmaps"].float().amax(dim=(-2, -1))
    scale = getattr(model, "intensity_scale", None)
    if scaled and scale is not None:
        peaks = peaks * scale.to(peaks.device, peaks.dtype)
    return peaks.clamp(0.0, MAX_INTENSITY)


class AUModel(nn.Module):
    """Base of every method: the attributes the training and annotation code read, and frozen parts.

    Subclasses set ``method``, ``aus``, ``preset``, ``output_kind`` and ``model_options`` (the
    build_model keyword arguments that rebuild the architecture from a checkpoint).
    """

    method: str = ""
    output_kind: str = "heatmap"  # or "regression"

    def __init__(self, method: str, aus: Iterable[int], preset: Preset, model_options: dict | None = None):
        super().__init__()
        self.method = method
        self.aus = tuple(int(a) for a in aus)
        self.preset = preset
        self.input_size = preset.input_size
        self.map_size = preset.map_size
        self.model_options = dict(model_options or {})
        # Per-AU factor on the read-out (heatmap models): MSE-trained maps peak below the target
        # amplitude, so training fits one factor per AU on its own crops (train.readout).
        self.register_buffer("intensity_scale", torch.ones(len(self.aus)))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "intensity_scale"
        if key not in state_dict:  # checkpoints from before the fitted read-out: the plain maximum
            state_dict[key] = torch.ones_like(self.intensity_scale)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def train(self, mode: bool = True):
        """Like nn.Module.train, but frozen parts stay in eval mode (their BN statistics fixed)."""
        super().train(mode)
        for m in self.modules():
            if getattr(m, "_auhm_frozen", False):
                m.eval()
        return self
