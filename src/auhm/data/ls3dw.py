"""LS3D-W: images with a Torch7 ``.t7`` file beside each holding a 68×2 float tensor.

Layout (as distributed)::

    300VW-3D/CatA/114/0001.jpg, 0001.t7    video frames: a folder per video
    AFLW2000-3D-Reannotated/image00002.jpg, .t7
    Menpo-3D/…, 300W-Testset-3D/…

The points are the 2D projections of the 3D landmarks (self-occluded ones included), made by
Torch7 code: 1-based like 300-W's ``.pts`` (``ibug300w.PTS_ORIGIN``), returned 0-based. The
tensors are read with the ``torchfile`` package (Torch7's binary serialisation format).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from auhm.data.ibug300w import PTS_ORIGIN
from auhm.data.landmark_formats import LandmarkCorpus, register_format, side_by_side
from auhm.errors import UsageError


def read_t7_points(path: Path) -> np.ndarray:
    """(n, 2) 0-based points of a .t7 file holding one tensor (or a list whose first item is one)."""
    import torchfile

    try:
        obj = torchfile.load(str(path))
    except Exception as e:  # a truncated or foreign file fails in many ways inside the parser
        raise ValueError(f"unreadable Torch7 file ({type(e).__name__}: {str(e).strip() or 'no detail'})") from None
    if isinstance(obj, list) and obj and isinstance(obj[0], np.ndarray):
        obj = obj[0]
    if not isinstance(obj, np.ndarray):
        raise ValueError(f"holds a {type(obj).__name__}, expected a 68×2 tensor")
    return np.asarray(obj, np.float64) - PTS_ORIGIN


@register_format("ls3d-w", "images with a Torch7 .t7 file of 68×2 points beside each, e.g. 300VW-3D/CatA/114/0001.jpg and .t7")
def scan(root: Path) -> LandmarkCorpus:
    try:
        import torchfile  # noqa: F401
    except ImportError:
        raise UsageError("--format ls3d-w reads .t7 files with the torchfile package: pip install torchfile") from None
    return side_by_side(root, ".t7", read_t7_points, "ls3d-w")
