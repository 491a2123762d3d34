"""The 300-W family (300-W, iBUG, LFPW, HELEN, AFW): images with an iBUG ``.pts`` file beside each.

A ``.pts`` file::

    version: 1
    n_points:  68
    {
    357.417253 308.455774
    …
    }

Coordinates are 1-based pixels (iBUG's annotations follow MATLAB: the centre of the top-left
pixel is (1, 1); menpo, the iBUG group's own reader, subtracts 1 too): ``read_pts`` returns them
0-based and ``write_pts`` writes 0-based points back 1-based, so the two are inverses.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from auhm.data.landmark_formats import LandmarkCorpus, register_format, side_by_side

PTS_ORIGIN = 1.0  # the coordinate of the first pixel's centre in a .pts file


def read_pts(path: str | os.PathLike) -> np.ndarray:
    """(n, 2) float64 0-based points of a .pts file; ValueError naming what is malformed."""
    text = Path(path).read_text(errors="replace")
    head, brace, rest = text.partition("{")
    body, close, _ = rest.partition("}")
    if not brace or not close:
        raise ValueError("not a .pts file (no { … } block of points)")
    declared = None
    for line in head.splitlines():
        key, colon, value = line.partition(":")
        if colon and key.strip().lower() == "n_points":
            try:
                declared = int(value)
            except ValueError:
                raise ValueError(f"bad n_points line {line.strip()!r}") from None
    rows = [line.split() for line in body.splitlines() if line.strip()]
    try:
        points = np.array([[float(v) for v in row] for row in rows], np.float64)
    except ValueError:
        raise ValueError("a point line that is not two numbers") from None
    if any(len(row) != 2 for row in rows):
        raise ValueError("a point line that is not two numbers")
    if declared is not None and declared != len(rows):
        raise ValueError(f"n_points says {declared}, the file lists {len(rows)}")
    return points.reshape(-1, 2) - PTS_ORIGIN


def write_pts(path: str | os.PathLike, points: np.ndarray) -> None:
    """Write (n, 2) 0-based points as a version-1 .pts file (1-based, three decimals)."""
    p = np.asarray(points, np.float64) + PTS_ORIGIN
    lines = [f"version: 1\nn_points: {len(p)}\n{{\n"] + [f"{x:.3f} {y:.3f}\n" for x, y in p] + ["}\n"]
    Path(path).write_text("".join(lines))


@register_format("300w", "images with an iBUG .pts file of 68 points beside each, e.g. helen/trainset/100032540_1.jpg and .pts")
def scan(root: Path) -> LandmarkCorpus:
    return side_by_side(root, ".pts", read_pts, "300w")
