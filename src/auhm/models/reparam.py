"""Reparametrisation of the landmark network (paper §4.5, Eq. 3).

Every conv weight θ (C_out × C_in × k × k) of the frozen network becomes W ×₁ θ with a learned
C_out × C_out matrix W, initialised to the identity so training starts from the landmark
network itself; biases and BatchNorm stay frozen; the last layer is new.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from auhm.models.base import AUModel, Preset, freeze
from auhm.models.blocks import heatmap_conv
from auhm.models.registry import register
from auhm.models.transfer import BackboneSpec, make_backbone


class ReparamConv2d(nn.Module):
    """A frozen convolution whose output filters are re-mixed by a learned projection."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.dilation, self.groups = conv.dilation, conv.groups
        self.weight = nn.Parameter(conv.weight.detach().clone(), requires_grad=False)
        self.bias = None if conv.bias is None else nn.Parameter(conv.bias.detach().clone(), requires_grad=False)
        self.projection = nn.Parameter(torch.eye(conv.out_channels, dtype=conv.weight.dtype))

    def projected_weight(self) -> torch.Tensor:
        return torch.einsum("oc,cikl->oikl", self.projection, self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.projected_weight(), self.bias, self.stride, self.padding, self.dilation, self.groups)


def reparametrise(module: nn.Module) -> nn.Module:
    """Replace every nn.Conv2d below ``module`` by a ReparamConv2d, in place."""
    for name, child in module.named_children():
        if isinstance(child, nn.Conv2d):
            setattr(module, name, ReparamConv2d(child))
        else:
            reparametrise(child)
    return module


@register("reparam", transfer=True)
class Reparametrised(AUModel):
    def __init__(self, aus: Sequence[int], preset: Preset, backbone: BackboneSpec = None, pretrained: bool = True):
        super().__init__("reparam", aus, preset)
        if backbone == "fan2d":
            raise ValueError("backbone 'fan2d' is available to adaptation and attention; reparam needs an auhm landmark network")
        self.net = reparametrise(make_backbone(backbone, preset, pretrained))
        for m in self.net.modules():
            if isinstance(m, nn.BatchNorm2d):
                freeze(m)
        self.net.head.out = heatmap_conv(preset.channels, len(self.aus))  # new last layer, fully trained
        self.model_options = {"backbone": None}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"heatmaps": self.net(x)}
