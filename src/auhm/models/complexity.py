"""Parameter and FLOP counts for `auhm models` and the benchmarks.

FLOPs are counted as 2 × multiply-adds of every convolution and linear layer at the preset's
input size, measured with forward hooks on one image (BatchNorm, ReLU, pooling and resampling
are left out). The paper's Table 5 uses the same convention: its ResNet-18 figure, 4.75 G at
256², is twice ResNet-18's 2.37 G multiply-adds at that size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn as nn

from auhm.errors import UsageError
from auhm.models.base import PRESETS, AUModel
from auhm.models.registry import PAPER_TABLE5, build_model, list_methods
from auhm.models.reparam import ReparamConv2d


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(total, trainable); frozen backbones count in the total."""
    total = sum(p.numel() for p in model.parameters())
    return total, sum(p.numel() for p in model.parameters() if p.requires_grad)


def count_macs(model: nn.Module, input_size: int) -> int:
    """Multiply-adds of one forward pass on a 1×3×S×S input (convs and linears)."""
    macs = 0

    def conv_hook(m, _inp, out):
        nonlocal macs
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        macs += out.numel() // out.shape[0] * k

    def linear_hook(m, _inp, out):
        nonlocal macs
        macs += out.numel() // out.shape[0] * m.in_features

    handles = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, ReparamConv2d)):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(torch.zeros(1, 3, input_size, input_size))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return macs


@dataclass(frozen=True)
class MethodComplexity:
    method: str
    parameters: int
    trainable: int
    gflops: float  # 2 × multiply-adds, in G, at the preset's input size
    paper_parameters_m: float | None
    paper_gflops: float | None


def method_complexity(method: str, aus: Sequence[int], preset: str = "paper") -> MethodComplexity:
    model: AUModel = build_model(method, aus, preset)
    total, trainable = count_parameters(model)
    paper = PAPER_TABLE5.get(method, (None, None))
    return MethodComplexity(method, total, trainable, 2 * count_macs(model, model.input_size) / 1e9, *paper)


def complexity_table(aus: Sequence[int], preset: str = "paper") -> list[MethodComplexity]:
    """One row per registered method (the landmark network included, as the transfer methods' backbone)."""
    if preset not in PRESETS:
        raise UsageError(f"--preset {preset}: choose one of {', '.join(PRESETS)}")
    return [method_complexity(m, aus, preset) for m in list_methods()]


def first_aus(n: int) -> tuple[int, ...]:
    """n AUs for sizing a model, the first of Table 1 (a model's size depends on how many, not which)."""
    from auhm.targets import AU_TABLE

    order = tuple(AU_TABLE)
    if not 1 <= n <= len(order):
        raise UsageError(f"--n-aus must be between 1 and {len(order)} (the AUs of Table 1)")
    return order[:n]


COUNTING_NOTE = (
    "GFLOPs = 2 × multiply-adds of convs and linears at the preset's input (the paper's convention: its ResNet-18 "
    "4.75 G is 2 × 2.37 G MACs at 256²). Parameters: total includes the frozen landmark network for adaptation, "
    "attention, random-backbone and reparam (for reparam: frozen θ + learned W + new last layer). The paper's 2.65 M "
    "for adaptation/attention implies ~1 M new parameters, which an hourglass of 128-ch 1×1 ConvBlocks (its §4.3 "
    "description) cannot reach: ours adds ~0.19 M."
)
