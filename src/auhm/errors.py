"""Per-input failures: a broken file among a thousand is reported, never fatal to the rest."""

from __future__ import annotations

from dataclasses import dataclass


class UsageError(ValueError):
    """Bad arguments or configuration: the CLI exits with code 2 and this message."""


@dataclass(frozen=True)
class InputFailure:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"
