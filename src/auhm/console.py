"""One rich console on stderr and one progress-bar style for every long job."""

from __future__ import annotations

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

console = Console(stderr=True, emoji=False)  # user text (paths, devices such as cuda:-1:) is never an emoji code


class RateColumn(TextColumn):
    """Items per second, named by the task's ``unit`` field (frames/s, img/s…)."""

    def __init__(self) -> None:
        super().__init__("")

    def render(self, task):  # type: ignore[override]
        speed = task.finished_speed or task.speed
        unit = task.fields.get("unit", "it")
        return f"{speed:,.1f} {unit}/s" if speed else f"– {unit}/s"


def progress(quiet: bool = False) -> Progress:
    """A progress bar with count, rate and ETA; disabled (but still countable) when quiet."""
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        disable=quiet,
        transient=False,
    )
