"""One registry for every kind of plug-in: models, landmark backends, face detectors, corpora and
landmark corpus formats.

A plug-in registers itself where it is defined (``@REGISTRY.register("name", aliases=…, key=value)``),
so adding one touches its own module and the registry's list of plug-in modules only. That list
is of module paths, imported by name on the first lookup: the registry's module imports none of
its plug-ins, so no import cycle runs between a registry and what registers in it, and a plug-in
module may be imported first or alone. Listings are sorted (or in a metadata order, such as the
detectors' preference), never in the order modules happened to be imported. Modelled on timm's
``_registry.py``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterable, TypeVar

from auhm.errors import UsageError

T = TypeVar("T")


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered plug-in: its name, the object, its earlier names and what else it says of itself."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)
    module: str = ""  # where it registered


class Registry(Generic[T]):
    """Name → plug-in of one kind (``kind``: how messages name it, "method", "corpus kind" …).

    ``modules``: the plug-in modules imported (by path) on the first lookup. ``fold_case``: names
    are matched case-insensitively. ``order``: a metadata key listings are sorted by (then by
    name), instead of the name alone.
    """

    def __init__(self, kind: str, modules: Iterable[str] = (), *, fold_case: bool = False, order: str | None = None):
        self.kind = kind
        self.modules = tuple(modules)
        self.fold_case = fold_case
        self.order = order
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._discovered = False

    # ── registering ──
    def register(self, name: str, obj: T | None = None, *, aliases: Iterable[str] = (), **meta) -> Any:
        """Register ``obj`` under ``name`` (and ``aliases``) with ``meta``; without ``obj``, a
        decorator that registers what it decorates and returns it unchanged."""
        if obj is None:
            return lambda target: self.register(name, target, aliases=aliases, **meta)
        name, aliases = self._key(name), tuple(self._key(a) for a in aliases)
        for n in (name, *aliases):
            if n in self._entries or n in self._aliases:
                raise ValueError(f"{self.kind} {n!r} registered twice")
        self._entries[name] = Entry(name, obj, aliases, dict(meta), getattr(obj, "__module__", "") or "")
        self._aliases.update({a: name for a in aliases})
        return obj

    def unregister(self, name: str) -> None:
        """Take a plug-in (and its aliases) out again: for tests that register a stand-in."""
        entry = self._entries.pop(self.resolve(name))
        for alias in entry.aliases:
            self._aliases.pop(alias, None)

    def discover(self) -> None:
        """Import the plug-in modules (once): each registers what it defines."""
        if self._discovered:
            return
        self._discovered = True
        for module in self.modules:
            importlib.import_module(module)

    # ── looking up ──
    def resolve(self, name: str) -> str:
        """The registered name for a name or an alias; any other name as given (case-folded if the registry folds)."""
        key = self._key(name)
        return self._aliases.get(key, key)

    def names(self) -> list[str]:
        """The registered names (aliases left out): sorted, or by the ``order`` metadata then name."""
        self.discover()
        if self.order is None:
            return sorted(self._entries)
        return sorted(self._entries, key=lambda n: (self._entries[n].meta.get(self.order, 0), n))

    def entries(self) -> list[Entry[T]]:
        return [self._entries[n] for n in self.names()]

    def __contains__(self, name: object) -> bool:
        self.discover()
        return isinstance(name, str) and self.resolve(name) in self._entries

    def entry(self, name: str, error: Callable[[str], Exception] = UsageError, option: str | None = None) -> Entry[T]:
        """The entry of a name or alias; for an unknown one ``error`` (UsageError by default) with a
        message that lists the choices (``option``: the command-line option that named it)."""
        self.discover()
        found = self._entries.get(self.resolve(name))
        if found is None:
            what = f"{option} {name}:" if option else f"unknown {self.kind} {name!r};"
            raise error(f"{what} choose one of {', '.join(self.names())}")
        return found

    def get(self, name: str, error: Callable[[str], Exception] = UsageError, option: str | None = None) -> T:
        """The registered object of a name or alias (see :meth:`entry`)."""
        return self.entry(name, error, option).obj

    def _key(self, name: str) -> str:
        return str(name).lower() if self.fold_case else str(name)
