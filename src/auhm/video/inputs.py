"""The videos a command is given: paths, folders, glob patterns and ``@list.txt`` files, in order."""

from __future__ import annotations

import glob
import os
from pathlib import Path

from auhm.errors import InputFailure, UsageError

_GLOB_CHARS = set("*?[")


VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"}
STILL_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}  # a photo given by name: a video of one frame


def known_length(path: str, claimed: int) -> int | None:
    """Frames a video holds when known before decoding: what its container claims, 1 for a photo, else None."""
    return claimed or (1 if Path(path).suffix.lower() in STILL_SUFFIXES else None)


def expand_inputs(patterns: list[str], unmatched: list[InputFailure] | None = None) -> list[str]:
    """Paths from videos, folders (their videos), glob patterns and ``@list.txt`` files, in order, without repeats.

    A list file holds one path or pattern per line (blank lines and ``#`` comments skipped);
    relative entries are relative to the list file's folder. An input that names no video (a
    pattern that matches nothing, a folder without videos) is appended to ``unmatched``, so that
    it is reported by name instead of vanishing silently; a plain path is kept as given (a
    missing file is reported when it is opened).
    """
    unmatched = [] if unmatched is None else unmatched
    out: list[str] = []
    for pattern in patterns:
        if pattern.startswith("@"):
            listing = Path(pattern[1:])
            if not listing.is_file():
                raise UsageError(f"{listing}: list file not found")
            entries = [line.strip() for line in listing.read_text().splitlines()]
            entries = [e if os.path.isabs(e) else str(listing.parent / e) for e in entries if e and not e.startswith("#")]
            found = expand_inputs(entries, unmatched)
            if not found and not entries:
                unmatched.append(InputFailure(pattern, "the list names no videos"))
            out += found
        elif _GLOB_CHARS & set(pattern):
            found = sorted(glob.glob(pattern, recursive=True))
            if not found:
                unmatched.append(InputFailure(pattern, "matches no file"))
            out += found
        elif os.path.isdir(pattern):  # every video below a folder
            found = sorted(str(p) for p in Path(pattern).rglob("*") if p.suffix.lower() in VIDEO_SUFFIXES and p.is_file())
            if not found:
                unmatched.append(InputFailure(pattern, "no video files in this folder"))
            out += found
        else:
            out.append(pattern)
    return list(dict.fromkeys(out))


def nothing_matched(unmatched: list[InputFailure]) -> UsageError:
    """The usage error when no input named a video: each input by name, with why."""
    return UsageError("no videos to process: " + "; ".join(str(f) for f in unmatched) if unmatched else "no videos given")
