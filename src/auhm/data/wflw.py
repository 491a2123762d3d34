"""WFLW: 98-point annotations in list files, mapped to the 68 iBUG points.

Layout (as distributed)::

    WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_train.txt   (and _test.txt)
    WFLW_images/0--Parade/0_Parade_marchingband_1_849.jpg …

One face per line: 196 coordinates (x0 y0 … x97 y97), the face box (4 values), 6 attribute flags
(pose, expression, illumination, make-up, occlusion, blur) and the image path relative to
``WFLW_images/``. A photo with several faces has several lines. The coordinates are used as they
are (0-based pixels: the release states no origin, and public loaders take them as they are).
The subset lists in ``list_98pt_test/`` repeat test faces and are not read.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np

from auhm.data.landmark_formats import Face, LandmarkCorpus, check_points, register_format
from auhm.data.readers import find_dirs, relative_key
from auhm.errors import InputFailure

N_WFLW = 98
LIST_NAMES = ("list_98pt_rect_attr_train.txt", "list_98pt_rect_attr_test.txt")
_FIELDS = 2 * N_WFLW + 4 + 6  # then the image path


def _wflw_to_ibug() -> list[int]:
    """The WFLW point each iBUG point is read from, group by group (0-based on both sides).

    - jaw 0–16 ← contour 0, 2, …, 32 (WFLW's 33 contour points run the same way, ear to ear,
      chin at 16: every other one);
    - brows 17–21 ← 33–37 and 22–26 ← 42–46 (the upper edge of each brow, outer to inner and
      inner to outer as in iBUG; WFLW's lower-edge points 38–41 and 47–50 have no iBUG match);
    - nose 27–30 ← bridge 51–54, 31–35 ← nostrils 55–59 (one to one);
    - eyes: WFLW has 8 per eye — corners 60 (outer) / 64 (inner) and 68 (inner) / 72 (outer),
      lids at quarter, half and three-quarter width — iBUG 6: its corners take the corners and its
      lids, at thirds, the quarter points: 36–41 ← 60, 61, 63, 64, 65, 67 and
      42–47 ← 68, 69, 71, 72, 73, 75;
    - mouth 48–59 ← outer lip 76–87, 60–67 ← inner lip 88–95 (one to one);
    - the pupils 96, 97 are not used.
    """
    jaw = list(range(0, 33, 2))
    brows = list(range(33, 38)) + list(range(42, 47))
    nose = list(range(51, 60))
    eyes = [60, 61, 63, 64, 65, 67, 68, 69, 71, 72, 73, 75]
    mouth = list(range(76, 96))
    return jaw + brows + nose + eyes + mouth


WFLW_TO_IBUG: list[int] = _wflw_to_ibug()


def _wflw_flip_permutation() -> list[int]:
    """WFLW's mirror pairs: the point that a horizontal flip turns each point into."""
    pairs = [(i, 32 - i) for i in range(16)]  # contour
    pairs += [(33 + i, 46 - i) for i in range(5)] + [(38 + i, 50 - i) for i in range(4)]  # brows: upper, lower edge
    pairs += [(55, 59), (56, 58)]  # nostrils
    pairs += [(60 + i, 72 - i) for i in range(5)] + [(65, 75), (66, 74), (67, 73)]  # eyes
    pairs += [(76, 82), (77, 81), (78, 80), (83, 87), (84, 86)]  # outer lip
    pairs += [(88, 92), (89, 91), (93, 95), (96, 97)]  # inner lip, pupils
    perm = list(range(N_WFLW))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


# landmarks_mirrored = landmarks[WFLW_FLIP_PERMUTATION] after x -> width - 1 - x
WFLW_FLIP_PERMUTATION: list[int] = _wflw_flip_permutation()


def wflw_to_ibug(points: np.ndarray) -> np.ndarray:
    """(98, 2) WFLW points → (68, 2) iBUG points."""
    return np.asarray(points)[WFLW_TO_IBUG]


def parse_line(line: str) -> tuple[np.ndarray, str]:
    """(98, 2) points and the image path of one list line; ValueError naming what is wrong."""
    parts = line.split()
    if len(parts) <= _FIELDS:
        raise ValueError(f"{len(parts)} fields, expected {_FIELDS + 1} (196 coordinates, 4 box values, 6 attributes, image path)")
    try:
        values = np.array([float(v) for v in parts[:_FIELDS]], np.float64)
    except ValueError:
        raise ValueError(f"fields 1–{_FIELDS} are not all numbers (98 points, box, attributes)") from None
    return values[:2 * N_WFLW].reshape(N_WFLW, 2), " ".join(parts[_FIELDS:])


def _images_dir(root: Path) -> Path:
    """``WFLW_images/`` at the root or one level down, else the root itself."""
    for base in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        found = find_dirs(base, "WFLW_images")
        if found:
            return found[0]
    return root


@register_format("wflw", "WFLW_annotations/…/list_98pt_rect_attr_train.txt (or _test.txt) and WFLW_images/")
def scan(root: Path) -> LandmarkCorpus:
    corpus = LandmarkCorpus("wflw", root)
    images = _images_dir(root)
    lists = sorted(p for p in root.rglob("*.txt") if p.name.lower() in LIST_NAMES)
    seen: dict[str, int] = {}
    for listing in lists:
        for number, line in enumerate(listing.read_text(errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            where = f"{listing}:{number}"
            try:
                points, name = parse_line(line)
            except ValueError as e:
                corpus.failures.append(InputFailure(where, str(e)))
                continue
            image = images / name
            rel = relative_key(root, image)
            seen[rel] = seen.get(rel, 0) + 1
            corpus.faces.append(Face(f"{rel}#{seen[rel]}", image, rel, where, partial(check_points, wflw_to_ibug(points))))
    return corpus
