"""Landmark backend name → factory, in the generic :class:`auhm.registry.Registry`: a backend
registers itself where it is defined, and is found on the first lookup.

The backends that need no network (dlib, truth) are in :mod:`auhm.face`; those that run a
network (``network``, ``fan``) in :mod:`auhm.landmarks`, after the models in the pipeline.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from auhm.errors import UsageError
from auhm.registry import Registry

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


# The backends with no network live in auhm.face, those that run one in auhm.landmarks.
BACKENDS: Registry[Callable] = Registry(
    "landmark backend", ["auhm.face.dlib_backend", "auhm.face.truth_backend", "auhm.landmarks.fan", "auhm.landmarks.network"])


def register_backend(name: str, *, aliases: tuple[str, ...] = (), needs_model: bool = False, forkable: bool = False):
    """Class or function decorator: ``factory(**options) -> LandmarkBackend``, options among
    ``OPTIONS`` (model: a landmark checkpoint, truth: a sidecar, device)."""
    return BACKENDS.register(name, aliases=aliases, needs_model=needs_model, forkable=forkable)


def backend_names() -> list[str]:
    """The registered backends, sorted (aliases left out): the same list whatever imported them first."""
    return BACKENDS.names()


def backend_name(name: str) -> str:
    """A backend's name now, for a name or an alias; any other name as it is."""
    return BACKENDS.resolve(name)


def backend_spec(name: str) -> BackendSpec:
    """The spec of a backend by name or alias; UsageError naming the choices for an unknown one."""
    e = BACKENDS.entry(name)
    accepted = tuple(p for p in inspect.signature(e.obj).parameters if p in OPTIONS)
    return BackendSpec(e.name, e.obj, e.aliases, e.meta["needs_model"], e.meta["forkable"], accepted)


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
