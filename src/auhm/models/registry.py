"""Method name → model factory; ``build_model`` is the one way to make any auhm model.

Each family module registers its methods with their default learning rate and whether they
start from a landmark backbone, so the training settings read them from here, not from a list
kept by hand.
"""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

from auhm.models.base import AUModel, Preset, get_preset
from auhm.registry import Registry

MODELS: Registry[Callable[..., AUModel]] = Registry(
    "method", ["auhm.models.aunet", "auhm.models.reparam", "auhm.models.resnet", "auhm.models.transfer"])

# The paper's Table 5 (parameters in millions, "flops" in G), for `auhm models`.
PAPER_TABLE5: dict[str, tuple[float, float]] = {
    "resnet18": (11.17, 4.75),
    "scratch": (1.65, 5.21),
    "finetune": (1.65, 5.21),
    "reparam": (1.79, 5.21),
    "attention": (2.65, 6.32),
    "adaptation": (2.65, 6.32),
}


def register(name: str, *, lr: float = 1e-3, transfer: bool = False, aliases: tuple[str, ...] = ()):
    """Class or function decorator: ``factory(aus, preset, **options) -> AUModel``. ``lr``: the
    method's default learning rate; ``transfer``: it starts from a landmark network (--backbone)."""
    return MODELS.register(name, aliases=aliases, lr=lr, transfer=transfer)


def list_methods() -> list[str]:
    """Every method, sorted (``landmarks``, the landmark network, among them)."""
    return MODELS.names()


def default_lr(method: str) -> float:
    """The learning rate a method trains with unless told otherwise."""
    return MODELS.entry(method, ValueError).meta["lr"]


def transfer_methods() -> tuple[str, ...]:
    """The methods that start from a landmark network (--backbone)."""
    return tuple(e.name for e in MODELS.entries() if e.meta["transfer"])


def build_model(method: str, aus: Sequence[int] = (), preset: str | Preset = "paper", **options) -> AUModel:
    """A fresh model of one method. Options: ``backbone`` (transfer methods: a landmarks
    checkpoint path, a state dict, "fan2d", or None for a random landmark network)."""
    from auhm.targets import check_aus

    factory = MODELS.get(method, ValueError)
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    aus = check_aus(aus) if method != "landmarks" else ()
    if method != "landmarks" and not aus:
        raise ValueError(f"method {method!r} needs at least one AU")
    accepted = [n for n in inspect.signature(factory).parameters if n not in ("aus", "preset")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(unknown)} (its options: {', '.join(accepted) or 'none'})")
    return factory(aus, p, **options)
