"""py-feat's CSV (``Detector.detect_video(…).to_csv``) read as an auhm prediction table.

py-feat writes a row per detected face (``FaceRectX/Y/Width/Height``, ``FaceScore``, ``AU01`` …,
``input`` the video, ``frame`` 0-based), and does not track faces. Here each frame keeps its largest
face, as auhm follows one; a frame without a face has no AU values and is not a success. py-feat's AU
values are occurrence probabilities (0–1), not 0–5 intensities: they are kept as they are, so compare
them by AUC (occurrence labels) or Pearson r rather than by MSE or ICC.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from auhm.io import au_columns

MARKER = "FaceRectX"  # the column that tells a py-feat table from others


def is_pyfeat(columns) -> bool:
    return MARKER in set(map(str, columns))


def pyfeat_to_auhm(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = df.loc[:, [c for c in df.columns if not str(c).startswith("Unnamed")]].copy()
    video = df["input"].astype(str) if "input" in df else pd.Series(Path(source).stem, index=df.index)
    area = (df["FaceRectWidth"] * df["FaceRectHeight"]).fillna(-1.0) if {"FaceRectWidth", "FaceRectHeight"} <= set(df.columns) else 0.0
    df = df.assign(video=video, _area=area).sort_values("_area", ascending=False, kind="stable")
    df = df.drop_duplicates(["video", "frame"]).sort_values(["video", "frame"], kind="stable")
    aus = au_columns(df.columns)
    out = pd.DataFrame({"video": df["video"], "frame": df["frame"].astype("int32"),
                        "timestamp": df.get("approx_time", pd.Series(np.nan, index=df.index)).astype("float64"),
                        "face": np.int16(0)})
    has_face = df["FaceRectX"].notna() & (df[aus].notna().any(axis=1) if aus else True)
    out["success"] = has_face.to_numpy(bool)
    out["confidence"] = df.get("FaceScore", pd.Series(np.nan, index=df.index)).astype("float32")
    for c in ("x0", "y0"):
        out[c] = df["FaceRectX" if c == "x0" else "FaceRectY"].astype("float32")
    out["x1"] = (df["FaceRectX"] + df.get("FaceRectWidth", 0)).astype("float32")
    out["y1"] = (df["FaceRectY"] + df.get("FaceRectHeight", 0)).astype("float32")
    for c in aus:
        out[c] = df[c].astype("float32").where(out["success"])
    return out.reset_index(drop=True)
