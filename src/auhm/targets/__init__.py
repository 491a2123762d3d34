"""AU locations (paper Table 1) and the heatmap targets built from them."""

from auhm.targets.au_table import (
    AU_TABLE,
    IBUG_FLIP_PERMUTATION,
    LEFT_EYE,
    MAX_INTENSITY,
    RIGHT_EYE,
    au_name,
    check_aus,
    parse_au,
)
from auhm.targets.heatmaps import (
    attention_maps,
    au_centres,
    au_heatmaps,
    au_target_mask,
    crop_to_map,
    flip_landmarks,
    heatmaps_to_landmarks,
    landmark_heatmaps,
    map_to_crop,
    masked_mse,
)

__all__ = [
    "AU_TABLE",
    "IBUG_FLIP_PERMUTATION",
    "LEFT_EYE",
    "MAX_INTENSITY",
    "RIGHT_EYE",
    "au_name",
    "check_aus",
    "parse_au",
    "attention_maps",
    "au_centres",
    "au_heatmaps",
    "au_target_mask",
    "crop_to_map",
    "flip_landmarks",
    "heatmaps_to_landmarks",
    "landmark_heatmaps",
    "map_to_crop",
    "masked_mse",
]
