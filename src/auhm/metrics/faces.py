"""One face per frame out of predictions that hold several: the track scored or plotted.

``auhm annotate`` writes one row per (frame, face), ``face`` the face's track id within its
video (null on a frame without a face). Labels of one face per frame can only be compared with one
track, so a video with several faces in a frame gives the track found on the most frames (ties:
the smaller id), or the one asked for; a frame where that track is absent keeps one row, with no
intensities, as a frame without a face would.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from auhm.io import au_columns


def _successful(rows: pd.DataFrame) -> pd.Series:
    ok = rows["face"].notna()
    return ok & rows["success"].fillna(False).astype(bool) if "success" in rows else ok


def track_frames(rows: pd.DataFrame) -> pd.Series:
    """Frames each track holds a face on (index: track id), most first, ties by the smaller id."""
    counts = rows[_successful(rows)].groupby("face")["frame"].nunique()
    counts.index = counts.index.astype(np.int64)
    return counts.sort_index(kind="stable").sort_values(ascending=False, kind="stable")


def pick_face(predictions: pd.DataFrame, face: int | None = None) -> tuple[pd.DataFrame, dict[str, dict], int]:
    """(rows with one face per (video, frame), {video: what was picked and why}, rows of other faces left out).

    A video is left as it is when no frame holds two faces and no ``face`` is asked for.
    """
    if "face" not in predictions or not len(predictions):
        return predictions, {}, 0
    aus = au_columns(predictions.columns)
    parts, picked, left_out = [], {}, 0
    for video, rows in predictions.groupby("video", sort=False):
        with_face = rows[rows["face"].notna()]
        if face is None and not with_face.duplicated("frame").any():
            parts.append(rows)
            continue
        counts = track_frames(rows)
        pick = int(face) if face is not None else (int(counts.index[0]) if len(counts) else None)
        mine = with_face[with_face["face"].astype(np.int64) == pick] if pick is not None else with_face.iloc[:0]
        mine = mine.drop_duplicates("frame")
        rest = rows[~rows["frame"].isin(mine["frame"])].drop_duplicates("frame").copy()
        rest[aus] = np.nan
        if "success" in rest:
            rest["success"] = False
        rest["face"] = np.nan
        left_out += int(len(with_face) - len(mine))
        parts.append(pd.concat([mine, rest]).sort_values("frame", kind="stable"))
        picked[str(video)] = {"face": pick, "how": "asked (--face)" if face is not None else "most frames",
                              "frames": int(counts.get(pick, 0)), "tracks": int(len(counts))}
    return pd.concat(parts, ignore_index=True), picked, left_out
