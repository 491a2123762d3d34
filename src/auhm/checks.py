"""Checks of numeric settings, each a UsageError that names the option and the value given.

Written so that NaN fails them all: ``not low <= value`` is true for NaN, where ``value < low``
would let it through to the code that divides by it or draws from it.
"""

from __future__ import annotations

import math

from auhm.errors import UsageError

MAX_SEED = 2**32 - 1  # NumPy's global generator takes no more


def _n(value: float) -> str:
    """A number as a person writes it: integers whole, other numbers short."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def at_least(value: float | None, minimum: float, option: str) -> None:
    """``value`` ≥ ``minimum`` (None: not given, nothing to check)."""
    if value is not None and not minimum <= value:
        raise UsageError(f"{option} must be at least {_n(minimum)}, not {_n(value)}")


def between(value: float | None, low: float, high: float, option: str, why: str = "") -> None:
    """``low`` ≤ ``value`` ≤ ``high`` (None: not given); ``why`` says where a bound comes from."""
    if value is not None and not low <= value <= high:
        raise UsageError(f"{option} must be between {_n(low)} and {_n(high)}{f' ({why})' if why else ''}, not {_n(value)}")


def finite(value: float | None, option: str, minimum: float | None = None, above: float | None = None) -> None:
    """A finite number (not NaN nor infinite), at least ``minimum`` or greater than ``above``."""
    if value is None:
        return
    if not math.isfinite(value):
        raise UsageError(f"{option} must be a finite number, not {value}")
    if minimum is not None:
        at_least(value, minimum, option)
    if above is not None and not value > above:
        raise UsageError(f"{option} must be greater than {_n(above)}, not {_n(value)}")


def seed(value: int | None, option: str = "--seed") -> None:
    """A seed every generator auhm seeds accepts."""
    between(value, 0, MAX_SEED, option)
