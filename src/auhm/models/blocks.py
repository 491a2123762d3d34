"""The face-alignment network's building blocks: the multi-scale ConvBlock and the Hourglass.

ConvBlock (Bulat & Tzimiropoulos 2017; paper Fig. 4): three pre-activated k×k convs with C/2,
C/4, C/4 outputs, each fed by the previous one, concatenated and added to the input (through a
pre-activated 1×1 projection when the channel count changes). ``kernel_size=1`` gives the
1×1 variant used by the adaptation-layer AU-Nets (paper §4.3).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F


class ConvBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3):
        super().__init__()
        half, quarter = out_channels // 2, out_channels // 4
        pad = kernel_size // 2
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, half, kernel_size, padding=pad, bias=False)
        self.bn2 = nn.BatchNorm2d(half)
        self.conv2 = nn.Conv2d(half, quarter, kernel_size, padding=pad, bias=False)
        self.bn3 = nn.BatchNorm2d(quarter)
        self.conv3 = nn.Conv2d(quarter, out_channels - half - quarter, kernel_size, padding=pad, bias=False)
        self.downsample = None
        if in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True), nn.Conv2d(in_channels, out_channels, 1, bias=False)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out1 = self.conv1(F.relu(self.bn1(x)))
        out2 = self.conv2(F.relu(self.bn2(out1)))
        out3 = self.conv3(F.relu(self.bn3(out2)))
        residual = x if self.downsample is None else self.downsample(x)
        return torch.cat((out1, out2, out3), 1) + residual


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels: max-pool down, ConvBlocks, bilinear up, skip at each scale (paper Fig. 5)."""

    def __init__(self, depth: int, channels: int, kernel_size: int = 3):
        super().__init__()
        self.depth = depth
        self.up = nn.ModuleList(ConvBlock(channels, channels, kernel_size) for _ in range(depth))
        self.down = nn.ModuleList(ConvBlock(channels, channels, kernel_size) for _ in range(depth))
        self.merge = nn.ModuleList(ConvBlock(channels, channels, kernel_size) for _ in range(depth))
        self.bottom = ConvBlock(channels, channels, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._level(0, x)

    def _level(self, i: int, x: torch.Tensor) -> torch.Tensor:
        skip = self.up[i](x)
        low = self.down[i](F.max_pool2d(x, 2, stride=2))
        low = self._level(i + 1, low) if i + 1 < self.depth else self.bottom(low)
        low = self.merge[i](low)
        return skip + F.interpolate(low, size=skip.shape[-2:], mode="bilinear", align_corners=False)


def heatmap_conv(in_channels: int, out_channels: int) -> nn.Conv2d:
    """The last 1×1 conv to the output maps, initialised near zero (most target pixels are zero)."""
    conv = nn.Conv2d(in_channels, out_channels, 1)
    nn.init.normal_(conv.weight, std=1e-3)
    nn.init.zeros_(conv.bias)
    return conv


class HeatmapHead(nn.Module):
    """FAN's output stage: a 1×1 conv, BatchNorm and ReLU, then the 1×1 conv to the maps.

    The normalisation keeps the last conv's inputs at unit scale whatever the width and depth of
    the trunk before it; without it the paper-size networks stalled at all-zero maps.
    Checkpoints of the earlier head (the last conv alone, keys ``weight``/``bias``) still load:
    the stage then runs without its normalisation.
    """

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.norm = nn.Sequential(nn.Conv2d(in_channels, in_channels, 1), nn.BatchNorm2d(in_channels), nn.ReLU(inplace=True))
        self.out = heatmap_conv(in_channels, out_channels)

    @property
    def out_channels(self) -> int:
        return self.out.out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.norm(x))

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        if prefix + "weight" in state_dict:  # the earlier head: the last conv alone
            self.norm = nn.Identity()
            for name in ("weight", "bias"):
                state_dict[f"{prefix}out.{name}"] = state_dict.pop(prefix + name)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
