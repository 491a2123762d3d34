"""300W-LP: 300-W faces re-rendered at large poses, ``<subset>/<name>.jpg`` with ``<name>.mat``.

Layout (as distributed)::

    AFW/AFW_134212_1_0.jpg, AFW/AFW_134212_1_0.mat      pt2d: 2×68 (x row, y row), plus 3DMM fits
    AFW_Flip/…, HELEN/…, HELEN_Flip/…, IBUG/…, LFPW/…   the same, and mirrored copies
    landmarks/AFW/AFW_134212_1_0_pts.mat                pts_2d: 68×2 (no Flip folders)

The ``.mat`` beside the image is read first; an image without one falls back to
``landmarks/<subset>/<name>_pts.mat``. The points come from MATLAB, 1-based like 300-W's ``.pts``
(``ibug300w.PTS_ORIGIN``), and are returned 0-based. A face's pose variants (``_0`` … ``_n``) and
its flipped copy share one group (``photo_group``), so they never straddle the split.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from auhm.data.ibug300w import PTS_ORIGIN
from auhm.data.landmark_formats import Face, LandmarkCorpus, check_points, photo_group, register_format
from auhm.data.readers import relative_key, walk_files
from auhm.errors import InputFailure

LANDMARKS_DIR = "landmarks"


def read_mat_points(path: Path, name: str) -> np.ndarray:
    """(68, 2) 0-based points from variable ``name`` of a MATLAB file, stored 2×68 or 68×2."""
    from scipy.io import loadmat

    try:
        mat = loadmat(str(path), variable_names=[name])
    except Exception as e:  # scipy raises several types for a damaged file
        raise ValueError(f"unreadable .mat file ({type(e).__name__}: {str(e).strip() or 'no detail'})") from None
    if name not in mat:
        raise ValueError(f"no {name} variable")
    p = np.asarray(mat[name], np.float64)
    if p.ndim == 2 and p.shape[0] == 2 and p.shape[1] != 2:
        p = p.T
    return check_points(p) - PTS_ORIGIN


@register_format("300w-lp", "<subset>/<name>.jpg with <name>.mat (pt2d) beside it, e.g. AFW/AFW_134212_1_0.jpg and .mat")
def scan(root: Path) -> LandmarkCorpus:
    corpus = LandmarkCorpus("300w-lp", root)
    for image in walk_files(root):
        if image.suffix.lower() != ".jpg":
            continue
        beside = image.with_suffix(".mat")
        fallback = root / LANDMARKS_DIR / image.parent.name / f"{image.stem}_pts.mat"
        if beside.is_file():
            source, name = beside, "pt2d"
        elif fallback.is_file():
            source, name = fallback, "pts_2d"
        else:
            corpus.failures.append(InputFailure(str(image), f"no annotation (expected {beside.name} beside it)"))
            continue
        key = relative_key(root, image)
        corpus.faces.append(Face(key, image, photo_group(key), str(source), partial(read_mat_points, source, name)))
    return corpus
