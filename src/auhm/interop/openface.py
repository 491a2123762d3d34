"""auhm's predictions as OpenFace 2.2's FeatureExtraction writes them: one CSV per video, named after it.

The columns are OpenFace's sequence columns ``frame`` (from 1), ``face_id``, ``timestamp``,
``confidence``, ``success``, then ``AUxx_r`` and ``AUxx_c`` for the AUs auhm predicts, sorted by name
as OpenFace sorts them, written ``, ``-separated in OpenFace's number format (RecorderCSV: timestamps
to 3 decimals, confidence and intensities to 2, occurrences to 1, an unscored frame's AUs as ``0``).
What differs from OpenFace is listed in the README ("Export").
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd

from auhm.io import atomic_path, au_columns

SEQUENCE_COLUMNS = ("frame", "face_id", "timestamp", "confidence", "success")
PRESENT_AT = 1.0  # an AU's ``_c`` column: intensity ≥ this (OpenFace has a separate classifier)


def openface_name(video: str, taken: set[str]) -> str:
    """``clip.mp4`` → ``clip.csv`` (OpenFace's name); a stem already taken gets its folder's name in front."""
    path = PurePosixPath(str(video).replace("\\", "/"))
    name = f"{path.stem}.csv"
    if name.lower() in taken:
        name = f"{path.parent.name}_{path.stem}.csv"
        k = 2
        while name.lower() in taken:
            name, k = f"{path.parent.name}_{path.stem}_{k}.csv", k + 1
    taken.add(name.lower())
    return name


def _fixed(values: np.ndarray, digits: int, blank: str = "") -> list[str]:
    return [blank if not np.isfinite(v) else f"{v:.{digits}f}" for v in values]


def openface_lines(rows: pd.DataFrame) -> list[str]:
    """Header and rows of one video's CSV, OpenFace's column order and number format."""
    aus = au_columns(rows.columns)
    header = list(SEQUENCE_COLUMNS) + [f"{a}_r" for a in aus] + [f"{a}_c" for a in aus]
    success = rows["success"].fillna(False).astype(bool).to_numpy() if "success" in rows else np.ones(len(rows), bool)
    face = rows["face"].fillna(0).astype(int).to_numpy() if "face" in rows else np.zeros(len(rows), int)
    timestamp = rows["timestamp"].to_numpy(np.float64) if "timestamp" in rows else np.full(len(rows), np.nan)
    confidence = rows["confidence"].fillna(0).to_numpy(np.float64) if "confidence" in rows else np.zeros(len(rows))
    columns = [
        [str(int(f) + 1) for f in rows["frame"].to_numpy()], [str(f) for f in face], _fixed(timestamp, 3),
        _fixed(confidence, 2), ["1" if s else "0" for s in success],
    ]
    intensity = rows[aus].to_numpy(np.float64) if aus else np.zeros((len(rows), 0))
    scored = success[:, None] & np.isfinite(intensity)
    columns += [np.where(scored[:, j], _fixed(intensity[:, j], 2, "0"), "0").tolist() for j in range(len(aus))]
    present = np.where(intensity >= PRESENT_AT, 1.0, 0.0)
    columns += [np.where(scored[:, j], _fixed(present[:, j], 1), "0").tolist() for j in range(len(aus))]
    return [", ".join(header)] + [", ".join(cells) for cells in zip(*columns)]


def write_openface(predictions: pd.DataFrame, out: Path) -> list[Path]:
    """One OpenFace CSV per video of ``predictions`` in the folder ``out`` (each written atomically)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    taken: set[str] = set()
    written = []
    for video, rows in predictions.groupby("video", sort=False):
        path = out / openface_name(str(video), taken)
        rows = rows.sort_values(["frame", "face"] if "face" in rows else ["frame"], kind="stable")
        with atomic_path(path) as tmp:
            Path(tmp).write_text("\n".join(openface_lines(rows)) + "\n")
        written.append(path)
    return written
