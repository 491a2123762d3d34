"""AU locations (paper Table 1) and the heatmap targets built from them."""

from auhm.targets.au_table import (
    AU_TABLE,
    DATASET_AUS,
    IBUG_FLIP_PERMUTATION,
    LEFT_EYE,
    RIGHT_EYE,
    au_name,
    check_aus,
    parse_au,
)

__all__ = [
    "AU_TABLE",
    "DATASET_AUS",
    "IBUG_FLIP_PERMUTATION",
    "LEFT_EYE",
    "RIGHT_EYE",
    "au_name",
    "check_aus",
    "parse_au",
]
