"""Transfer from the landmark network (paper §4): fine-tuning, adaptation layers, attention maps,
and the random-backbone ablation (§6.4).

The frozen landmark network runs once per image and yields both its conv4 features and its 68
landmark heatmaps; the heatmaps are returned too (``"landmark_heatmaps"``) so annotation can
track the face without a second pass.
"""

from __future__ import annotations

import os
from typing import Sequence

import torch
import torch.nn as nn

from auhm.models.aunet import N_LANDMARKS, AUNet, HeatmapNet
from auhm.models.base import AUModel, Preset, freeze
from auhm.models.blocks import ConvBlock, HeatmapHead, Hourglass
from auhm.models.checkpoint import read_checkpoint
from auhm.models.registry import register
from auhm.targets.heatmaps import attention_maps, heatmaps_to_landmarks

BackboneSpec = str | os.PathLike | dict | None


def landmark_state_dict(source: str | os.PathLike | dict) -> dict[str, torch.Tensor]:
    """HeatmapNet weights from a landmark checkpoint (``auhm train --task landmarks``) or a state dict in memory."""
    state = source if isinstance(source, dict) else read_checkpoint(source, task="landmarks")[0]
    # Accept keys of the AUNet wrapper ("net.conv1.weight") and of a bare HeatmapNet ("conv1.weight");
    # the wrapper's own buffers (its AU read-out) are not the network's.
    if any(k.startswith("net.") for k in state):
        state = {k: v for k, v in state.items() if k.startswith("net.")}
    return {k.removeprefix("net."): v for k, v in state.items()}


def make_backbone(backbone: BackboneSpec, preset: Preset, pretrained: bool = True, fan_modules: int = 4) -> nn.Module:
    """The landmark network a transfer method reads: ours (random or loaded) or face-alignment's 2DFAN4.

    ``pretrained=False`` builds the architecture only (load_checkpoint fills in the weights).
    """
    if backbone == "fan2d":
        from auhm.models.fan2d import Fan2DBackbone

        return Fan2DBackbone.from_local_weights() if pretrained else Fan2DBackbone(fan_modules)
    net = HeatmapNet(preset, N_LANDMARKS)
    if backbone is not None and pretrained:
        state = landmark_state_dict(backbone)
        try:
            net.load_state_dict(state)
        except RuntimeError as e:
            where = backbone if not isinstance(backbone, dict) else "state dict"
            raise ValueError(f"{where}: landmark network does not match preset {preset.name!r} ({str(e).splitlines()[0]})") from None
    return net


@register("finetune", lr=1e-4, transfer=True)
class FineTuned(AUNet):
    """Fine-tuning (§4.2): the landmark network's weights, a new last layer, everything trainable."""

    def __init__(self, aus: Sequence[int], preset: Preset, backbone: BackboneSpec = None, pretrained: bool = True):
        if backbone == "fan2d":
            raise ValueError("backbone 'fan2d' is available to adaptation and attention; finetune needs an auhm landmark network")
        super().__init__(aus, preset, method="finetune")
        if backbone is not None and pretrained:
            # everything but the last conv: its maps are landmarks, ours AUs
            state = {k: v for k, v in landmark_state_dict(backbone).items() if not k.startswith("head.out.") and k not in ("head.weight", "head.bias")}
            missing, unexpected = self.net.load_state_dict(state, strict=False)
            if unexpected or [k for k in missing if not k.startswith("head.")]:
                raise ValueError(f"landmark network does not match preset {preset.name!r}")
        self.model_options = {"backbone": None}


class AdaptationNet(AUModel):
    """Adaptation layers (§4.3) and attention maps (§4.4) over a frozen landmark network.

    conv4 features and a geometry input (the 68 landmark maps, or N_aus attention maps built
    from the backbone's argmax landmarks with a = 1) each go through 1×1 conv + BN + ReLU to C
    channels, are summed, and run through an Hourglass of 1×1 ConvBlocks to N_aus maps.
    """

    def __init__(self, aus: Sequence[int], preset: Preset, method: str, backbone: BackboneSpec, pretrained: bool, attention: bool, fan_modules: int = 4):
        super().__init__(method, aus, preset)
        self.attention = attention
        self.backbone = freeze(make_backbone(backbone, preset, pretrained, fan_modules))
        c = preset.channels
        geometry_in = len(self.aus) if attention else N_LANDMARKS
        self.feature_branch = nn.Sequential(nn.Conv2d(self.backbone.feature_channels, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.geometry_branch = nn.Sequential(nn.Conv2d(geometry_in, c, 1, bias=False), nn.BatchNorm2d(c), nn.ReLU(inplace=True))
        self.hourglass = Hourglass(preset.depth, c, kernel_size=1)
        self.top = ConvBlock(c, c, kernel_size=1)
        self.head = HeatmapHead(c, len(self.aus))
        self.model_options = {"backbone": None}
        if backbone == "fan2d":  # the architecture must be rebuilt without the weights file
            self.model_options = {"backbone": "fan2d", "fan_modules": self.backbone.fan.num_modules}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        with torch.no_grad():
            features, landmark_maps = self.backbone.forward_features(x)
            if self.attention:
                # float32 points: in bf16 a 256-px coordinate would be rounded to 1–2 px
                points, _ = heatmaps_to_landmarks(landmark_maps, self.input_size)
                geometry = attention_maps(points, self.aus, self.input_size, landmark_maps.shape[-1])
            else:
                geometry = landmark_maps
        h = self.feature_branch(features) + self.geometry_branch(geometry)
        return {"heatmaps": self.head(self.top(self.hourglass(h))), "landmark_heatmaps": landmark_maps}


@register("adaptation", transfer=True)
def adaptation(aus: Sequence[int], preset: Preset, backbone: BackboneSpec = None, pretrained: bool = True, fan_modules: int = 4) -> AdaptationNet:
    return AdaptationNet(aus, preset, "adaptation", backbone, pretrained, attention=False, fan_modules=fan_modules)


@register("attention", transfer=True)
def attention(aus: Sequence[int], preset: Preset, backbone: BackboneSpec = None, pretrained: bool = True, fan_modules: int = 4) -> AdaptationNet:
    return AdaptationNet(aus, preset, "attention", backbone, pretrained, attention=True, fan_modules=fan_modules)


@register("random-backbone")
def random_backbone(aus: Sequence[int], preset: Preset, seed: int = 0) -> AdaptationNet:
    """Adaptation layers over a frozen, randomly initialised landmark network (§6.4 ablation)."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = AdaptationNet(aus, preset, "random-backbone", None, False, attention=False)
    model.model_options = {"seed": seed}
    return model
