"""The AU ↔ landmark correspondences of the paper's Table 1 (the AUs each corpus codes are in its spec, ``data.corpora``).

Everything that needs to know where an AU lives on the face reads it from here.
"""

from __future__ import annotations

# One entry per AU: a list of Gaussian centres, each the mean of the listed 0-based iBUG
# landmarks, in the order left, right, centre (paper Table 1).
AU_TABLE: dict[int, list[list[int]]] = {
    1: [[21], [22], [21, 22, 27]],
    2: [[18], [25]],
    4: [[21], [22], [21, 22, 27]],
    5: [[37, 38], [43, 44]],
    6: [[1, 41, 31], [15, 46, 35]],
    9: [[31], [35], [28]],
    10: [[31], [35], [51]],
    12: [[48], [54]],
    14: [[48], [54]],
    15: [[48], [54]],
    17: [[57], [8]],
    20: [[48], [54], [51]],
    25: [[61, 64]],
    26: [[61, 64]],
}

# AU intensities are coded 0 (absent) to 5 (maximum, FACS's E); larger codes (9) mark unlabelled frames.
MAX_INTENSITY = 5.0


def _ibug_flip_permutation() -> list[int]:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17 + i, 26 - i) for i in range(5)]  # brows
    pairs += [(31, 35), (32, 34)]  # nostrils
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    perm = list(range(68))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


# landmarks_mirrored = landmarks[IBUG_FLIP_PERMUTATION] after x -> width - 1 - x
IBUG_FLIP_PERMUTATION: list[int] = _ibug_flip_permutation()

# Named landmark groups, used for inter-ocular normalisation and synthetic rendering.
LEFT_EYE = list(range(36, 42))
RIGHT_EYE = list(range(42, 48))


def au_name(au: int) -> str:
    """Column name of an AU in every table auhm writes: 1 -> 'AU01'."""
    return f"AU{int(au):02d}"


def parse_au(name: str | int) -> int:
    """'AU01', 'au1', 'AU01_r', '1' or 1 -> 1."""
    if isinstance(name, int):
        return name
    s = str(name).strip().upper()
    if s.startswith("AU"):
        s = s[2:]
    s = s.split("_")[0]
    return int(s)


def check_aus(aus) -> tuple[int, ...]:
    """Validate an AU list against Table 1, keeping its order."""
    out = tuple(parse_au(a) for a in aus)
    unknown = [a for a in out if a not in AU_TABLE]
    if unknown:
        raise ValueError(f"AUs {unknown} have no location in the paper's Table 1 (known: {sorted(AU_TABLE)})")
    return out
