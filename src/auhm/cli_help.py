"""Typer command classes whose ``--help`` reads like a classic CLI's: ``auhm annotate [OPTIONS]
VIDEOS...``, metavars (PATH, CKPT, N) instead of Python types, no type shown on flags."""

from __future__ import annotations

from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption


class _Argument(TyperArgument):
    """Shown as VIDEOS... in the usage line and the help (the help text says what it takes)."""

    @property
    def display_name_raw(self) -> str:
        return self.metavar or self.name.upper()

    def _usage_display_name(self) -> str:
        name = self.display_name_raw + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"

    def display_type_rich(self, ctx) -> str | None:
        return None


class _Option(TyperOption):
    """A flag shows no type; an option with a value shows its metavar, else its type as click names it."""

    def display_type_rich(self, ctx) -> str | None:
        if self.is_flag:
            return None
        if self.metavar:
            return self.metavar
        name = (super().display_type_rich(ctx) or "").strip("<>")
        return {"str": "TEXT", "int": "INTEGER"}.get(name, name.upper())


def _plain(params: list) -> list:
    """Typer makes its own parameter objects from the signature (no class to choose): give them ours."""
    for param in params:
        if type(param) is TyperArgument:
            param.__class__ = _Argument
        elif type(param) is TyperOption:
            param.__class__ = _Option
    return params


class HelpCommand(TyperCommand):
    """A command whose help reads like a classic CLI's: ``auhm annotate [OPTIONS] VIDEOS...``."""

    def get_params(self, ctx):
        return _plain(super().get_params(ctx))


class HelpGroup(TyperGroup):
    """The top-level group, with the same layout for its own options."""

    def get_params(self, ctx):
        return _plain(super().get_params(ctx))
