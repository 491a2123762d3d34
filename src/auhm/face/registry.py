"""Landmark backend name → factory, like the models' ``register``: a backend registers itself
where it is defined, so adding one touches its own module only.

The backends that need no network (dlib, truth) register in :mod:`auhm.face`; those that run a
network (``network``, ``fan``) in :mod:`auhm.landmarks`, after the models in the pipeline. Make
backends through :func:`auhm.landmarks.make_backend`, which has loaded them all.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from auhm.errors import UsageError

# The options every caller may give; a factory is handed those its signature names.
OPTIONS = ("model", "truth", "device", "min_face")


@dataclass(frozen=True)
class BackendSpec:
    name: str
    factory: Callable  # (**the OPTIONS it names) -> LandmarkBackend
    aliases: tuple[str, ...] = ()  # earlier names, still accepted (and read in older outputs' metadata)
    needs_model: bool = False  # a landmark checkpoint (--landmark-model) is required
    forkable: bool = False  # needs neither torch nor a model: may track in forked processes
    options: tuple[str, ...] = field(default=())


_BACKENDS: dict[str, BackendSpec] = {}
_ALIASES: dict[str, str] = {}


def register_backend(name: str, *, aliases: tuple[str, ...] = (), needs_model: bool = False, forkable: bool = False):
    """Class or function decorator: ``factory(**options) -> LandmarkBackend``, options among
    ``OPTIONS`` (model: a landmark checkpoint, truth: a sidecar, device)."""

    def deco(factory):
        if name in _BACKENDS or name in _ALIASES:
            raise ValueError(f"landmark backend {name!r} registered twice")
        accepted = tuple(p for p in inspect.signature(factory).parameters if p in OPTIONS)
        _BACKENDS[name] = BackendSpec(name, factory, tuple(aliases), needs_model, forkable, accepted)
        _ALIASES.update({a: name for a in aliases})
        return factory

    return deco


def backend_names() -> list[str]:
    """The registered backends, sorted (aliases left out): the same list whatever imported them first."""
    return sorted(_BACKENDS)


def backend_name(name: str) -> str:
    """A backend's name now, for a name or an alias; any other name as it is."""
    return _ALIASES.get(name, name)


def backend_spec(name: str) -> BackendSpec:
    """The spec of a backend by name or alias; UsageError naming the choices for an unknown one."""
    spec = _BACKENDS.get(backend_name(name))
    if spec is None:
        raise UsageError(f"unknown landmark backend {name!r}; choose one of {', '.join(backend_names())}")
    return spec


def check_backend(name: str, model: Path | None, choice: str = "--landmarks", option: str = "--landmark-model") -> BackendSpec:
    """What can be told of a backend choice before any work: its name is known, and the
    checkpoint it needs is given (``choice`` and ``option``: the command's options that name the
    backend and give the checkpoint, for the message)."""
    spec = backend_spec(name)
    if spec.needs_model and model is None:
        raise UsageError(f"{choice} {name} needs {option} CKPT (a checkpoint of `auhm train --task landmarks`)")
    return spec


def make_backend(name: str, *, model: Path | None = None, truth: Path | None = None, device: str = "cpu", min_face: int | None = None):
    """The backend called ``name`` (or one of its aliases); its library is loaded only now, so the
    others need not be installed. Unknown names and missing checkpoints are UsageErrors."""
    spec = check_backend(name, model)
    given = {"model": model, "truth": truth, "device": device, "min_face": min_face}
    return spec.factory(**{k: given[k] for k in spec.options if given[k] is not None or k != "min_face"})
