"""Aff-Wild2 annotates a two-person video twice, ``<video>_left`` and ``<video>_right``: which face
track of ``auhm annotate`` is which person. Left is the long track whose boxes sit further left on
average; a video whose tracks cannot be told apart that way is reported, never guessed."""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

SIDES = ("left", "right")
_SIDE = re.compile(r"(.+)_(left|right)", re.IGNORECASE)
LONG_TRACK = 0.2  # share of a video's frames a track must cover to count as one of its people


def side_name(video: str, side: str) -> str:
    """``dir/clip.mp4`` → ``dir/clip_left.mp4``: the name the side's annotation file gives it."""
    path = PurePosixPath(str(video).replace("\\", "/"))
    return str(path.with_name(f"{path.stem}_{side}{path.suffix}"))


def map_sides(predictions: pd.DataFrame, long_track: float = LONG_TRACK) -> tuple[pd.DataFrame, dict[str, str]]:
    """Rows of each video's two long face tracks, renamed ``side_name(video, side)`` with face 0, and
    {video: why} for each video left out as ambiguous: not exactly two tracks covering ``long_track``
    of its frames, or two whose box centres overlap (their means closer than the sum of their spreads).

    ``predictions`` has video, frame, face (the track id; null: no face) and the box's x0, x1."""
    parts, ambiguous = [], {}
    for video, rows in predictions.groupby("video", sort=True):
        faces = rows[rows["face"].notna() & rows[["x0", "x1"]].notna().all(axis=1)]
        n_frames = max(rows["frame"].nunique(), 1)
        cover = faces.groupby("face")["frame"].nunique()
        long = sorted(cover.index[cover >= long_track * n_frames])
        if len(long) != 2:
            ambiguous[str(video)] = f"{len(long)} long face tracks, not 2"
            continue
        centre = (faces["x0"] + faces["x1"]) / 2
        stats = [(centre[faces["face"] == f].mean(), centre[faces["face"] == f].std(ddof=0), f) for f in long]
        (m_left, s_left, left), (m_right, s_right, right) = sorted(stats)
        if m_right - m_left <= s_left + s_right:
            ambiguous[str(video)] = (f"face tracks {left} and {right} overlap (box centres at x {m_left:.0f} ± {s_left:.0f} "
                                     f"and {m_right:.0f} ± {s_right:.0f})")
            continue
        for side, face in zip(SIDES, (left, right)):
            part = faces[faces["face"] == face].copy()
            part["video"] = side_name(str(video), side)
            part["face"] = np.int16(0)
            parts.append(part)
    mapped = pd.concat(parts, ignore_index=True) if parts else predictions.iloc[:0].copy()
    return mapped, ambiguous


def apply_sides(predictions: pd.DataFrame, labels: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Predictions with the videos that side-annotated labels name (``clip_left`` / ``clip_right``)
    mapped onto their sides; other videos as they were. {label video: why} for the sides left out."""
    if "face" not in predictions or not {"x0", "x1"} <= set(predictions.columns):
        return predictions, {}
    bases = {}
    for lv in labels["video"].astype(str).unique():
        m = _SIDE.fullmatch(PurePosixPath(lv.replace("\\", "/")).stem)
        if m:
            bases.setdefault(m.group(1).lower(), []).append(lv)
    stems = predictions["video"].astype(str).map(lambda v: PurePosixPath(v.replace("\\", "/")).stem.lower())
    two_sided = stems.isin(bases)
    if not two_sided.any():
        return predictions, {}
    mapped, ambiguous = map_sides(predictions[two_sided])
    why = {lv: f"{video}: {reason}" for video, reason in ambiguous.items()
           for lv in bases[PurePosixPath(video.replace("\\", "/")).stem.lower()]}
    return pd.concat([predictions[~two_sided], mapped], ignore_index=True), why
