"""What can go wrong, and whose it is: the user's arguments (``UsageError``), one input among many
(``InputError`` raised, ``InputFailure`` reported: a broken file among a thousand is never fatal
to the rest), a job that ran as asked and failed (``RunFailed``: a training run that diverged),
or a bug (anything else: the CLI says so and exits 3)."""

from __future__ import annotations

import os
from dataclasses import dataclass


class UsageError(Exception):
    """Bad arguments or configuration: the CLI exits with code 2 and this message."""


class Interrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM; the message says what was kept and how to go on."""


class RunFailed(Exception):
    """A job that ran as asked and did not reach a result (training diverged): the CLI exits 1 with
    this message, which says what to try. Neither the arguments' fault as such nor a bug."""


class InputError(RuntimeError):
    """One input that cannot be read as it should (a video that does not decode): that input fails, the others go on."""


@dataclass(frozen=True)
class InputFailure:
    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


# What a broken input raises: its message is the reason as it stands. Anything else is named by type.
INPUT_ERRORS = (InputError, OSError, ValueError)


def failure_reason(e: BaseException, path: str | os.PathLike | None = None) -> str:
    """The reason an input failed, in one line: the error's first line without a leading copy of
    ``path`` (the report names the input already), prefixed by the error's type unless it is one
    a broken input raises (``INPUT_ERRORS``)."""
    text = str(e).strip()
    msg = text.splitlines()[0] if text else type(e).__name__
    if path is not None and str(path):
        for prefix in (f"{path}: ", f"{os.path.abspath(path)}: "):
            if msg.startswith(prefix):
                msg = msg[len(prefix):]
                break
    return msg if isinstance(e, INPUT_ERRORS) or not text else f"{type(e).__name__}: {msg}"
