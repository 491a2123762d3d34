"""Method name → model factory; ``build_model`` is the one way to make any auhm model."""

from __future__ import annotations

import inspect
from typing import Callable, Sequence

from auhm.models.base import AUModel, Preset, get_preset

_FACTORIES: dict[str, Callable[..., AUModel]] = {}

# The paper's Table 5 (parameters in millions, "flops" in G), for `auhm models`.
PAPER_TABLE5: dict[str, tuple[float, float]] = {
    "resnet18": (11.17, 4.75),
    "scratch": (1.65, 5.21),
    "finetune": (1.65, 5.21),
    "reparam": (1.79, 5.21),
    "attention": (2.65, 6.32),
    "adaptation": (2.65, 6.32),
}


def register(name: str):
    """Class or function decorator: ``factory(aus, preset, **options) -> AUModel``."""

    def deco(factory):
        if name in _FACTORIES:
            raise ValueError(f"method {name!r} registered twice")
        _FACTORIES[name] = factory
        return factory

    return deco


def _load_families() -> None:
    # Imported here, not at module top: the family modules import `register` from this module.
    from auhm.models import aunet, reparam, resnet, transfer  # noqa: F401


def list_methods() -> list[str]:
    _load_families()
    return list(_FACTORIES)


def build_model(method: str, aus: Sequence[int] = (), preset: str | Preset = "paper", **options) -> AUModel:
    """A fresh model of one method. Options: ``backbone`` (transfer methods: a landmarks
    checkpoint path, a state dict, "fan2d", or None for a random landmark network)."""
    from auhm.targets import check_aus

    _load_families()
    if method not in _FACTORIES:
        raise ValueError(f"unknown method {method!r} (known: {', '.join(_FACTORIES)})")
    p = preset if isinstance(preset, Preset) else get_preset(preset)
    aus = check_aus(aus) if method != "landmarks" else ()
    if method != "landmarks" and not aus:
        raise ValueError(f"method {method!r} needs at least one AU")
    factory = _FACTORIES[method]
    accepted = [n for n in inspect.signature(factory).parameters if n not in ("aus", "preset")]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"method {method!r} takes no option {', '.join(unknown)} (its options: {', '.join(accepted) or 'none'})")
    return factory(aus, p, **options)
