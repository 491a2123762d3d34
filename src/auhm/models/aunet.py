"""The paper's AU-Net (§3.3): scratch heatmap regression, and the landmark network ("FAN", §4.1).

Both are one architecture: 7×7/2 conv → 2× max pool → ConvBlocks conv2, conv3, conv4 at S/4 →
one Hourglass → ConvBlock → FAN's output stage (1×1 conv, BatchNorm, ReLU, 1×1 conv to the maps). The landmark network is the same net
with 68 outputs; its conv4 features and heatmaps feed the transfer methods.

Where to pool is not stated in the paper. face-alignment's FAN runs conv2 at S/2 and pools
after it; pooling first (as here) gives 5.07 GFLOPs at 256², against Table 5's 5.21 G, where
FAN's order would give 6.85 G — so the paper's network most likely pooled first.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from auhm.models.base import AUModel, Preset
from auhm.models.blocks import ConvBlock, HeatmapHead, Hourglass
from auhm.models.registry import register

N_LANDMARKS = 68


class HeatmapNet(nn.Module):
    """The heatmap network itself, without the AU bookkeeping (the backbone of transfer methods)."""

    def __init__(self, preset: Preset, out_channels: int):
        super().__init__()
        c, s = preset.channels, preset.stem_channels
        self.conv1 = nn.Conv2d(3, s, 7, stride=2, padding=3)
        self.bn1 = nn.BatchNorm2d(s)
        self.conv2 = ConvBlock(s, c)
        self.conv3 = ConvBlock(c, c)
        self.conv4 = ConvBlock(c, c)
        self.hourglass = Hourglass(preset.depth, c)
        self.top = ConvBlock(c, c)
        self.head = HeatmapHead(c, out_channels)
        self.feature_channels = c

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """conv4 features (B, C, S/4, S/4)."""
        x = F.max_pool2d(F.relu(self.bn1(self.conv1(x))), 2, stride=2)
        return self.conv4(self.conv3(self.conv2(x)))

    def trunk(self, features: torch.Tensor) -> torch.Tensor:
        """Hourglass and top ConvBlock: the features the last 1×1 conv reads."""
        return self.top(self.hourglass(features))

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(conv4 features, output heatmaps) from one pass."""
        f = self.features(x)
        return f, self.head(self.trunk(f))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)[1]


class AUNet(AUModel):
    """Heatmap regression from scratch: image → N_aus maps whose maxima are the intensities."""

    def __init__(self, aus: Sequence[int], preset: Preset, method: str = "scratch", n_outputs: int | None = None):
        super().__init__(method, aus, preset)
        self.net = HeatmapNet(preset, n_outputs if n_outputs is not None else len(self.aus))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.net(x)}


@register("scratch")
def scratch(aus: Sequence[int], preset: Preset) -> AUNet:
    return AUNet(aus, preset)


@register("landmarks")
def landmark_network(aus: Sequence[int], preset: Preset) -> AUNet:
    """The landmark network: AU-Net with 68 landmark maps (trained with ``--task landmarks``)."""
    return AUNet((), preset, method="landmarks", n_outputs=N_LANDMARKS)
