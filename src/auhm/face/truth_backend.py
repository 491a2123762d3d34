"""truth: landmarks read from a sidecar table instead of computed from pixels.

``auhm synth`` writes ``ROOT/auhm_truth/<video stem>.parquet`` (columns ``frame`` 0-based,
``x_0…x_67``, ``y_0…y_67`` in frame pixels); by default the sidecar is looked for in an
``auhm_truth`` folder of any of the video's parent directories. Also read: ``auhm landmarks``
output (rows of other videos are ignored) and OpenFace 2.2 CSVs (``frame`` counted from 1,
``success``). Frames the sidecar does not list are reported as no face.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from auhm.face.base import N_LANDMARKS, Detection, FaceTrack, LandmarkBackend, landmark_boxes
from auhm.face.registry import register_backend

X_COLUMNS = [f"x_{k}" for k in range(N_LANDMARKS)]
Y_COLUMNS = [f"y_{k}" for k in range(N_LANDMARKS)]
TRUTH_DIR = "auhm_truth"  # the folder of sidecars in a corpus root (written by `auhm synth`)


def find_sidecar(video: str | Path, truth: Path | None = None) -> Path:
    """The sidecar for ``video``: ``truth`` itself, ``truth/<stem>.{parquet,csv}``, or ``…/auhm_truth/<stem>.parquet`` above the video."""
    video = Path(video)
    if truth is not None and Path(truth).is_file():
        return Path(truth)
    folders = [Path(truth)] if truth is not None else [p / TRUTH_DIR for p in video.absolute().parents]
    for folder in folders:
        for suffix in (".parquet", ".csv"):
            candidate = folder / f"{video.stem}{suffix}"
            if candidate.is_file():
                return candidate
    where = str(truth) if truth is not None else f"an {TRUTH_DIR}/ folder above the video"
    raise FileNotFoundError(f"no landmark sidecar {video.stem}.parquet/.csv in {where}")


def read_sidecar(path: Path, video: str | Path | None = None) -> pd.DataFrame:
    """Rows frame (0-based), success, confidence, x_0…x_67, y_0…y_67 of one video's sidecar, indexed
    by frame; with a ``face`` column (the face's id, several rows a frame) kept as it is."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        df = pd.read_csv(path, skipinitialspace=True)
        df.columns = [str(c).strip() for c in df.columns]
        one_based = True  # OpenFace numbers frames from 1
    else:
        df = pd.read_parquet(path)
        one_based = False
    missing = [c for c in ["frame", *X_COLUMNS, *Y_COLUMNS] if c not in df.columns]
    if missing:
        raise ValueError(f"{path}: not a landmark table (lacks {', '.join(missing[:3])}{'…' if len(missing) > 3 else ''})")
    if video is not None and "video" in df.columns:
        names = df["video"].astype(str)
        video = Path(video)
        mine = (names == str(video)) | (names.map(lambda s: Path(s).name) == video.name)
        if mine.any():
            df = df[mine]
        elif names.nunique() > 1:
            raise ValueError(f"{path}: has no rows for video {video.name}")
    n = len(df)
    columns = {
        "frame": df["frame"].to_numpy(np.int64) - int(one_based),
        "success": df["success"].to_numpy(bool) if "success" in df.columns else np.ones(n, bool),
        "confidence": df["confidence"].to_numpy(np.float32) if "confidence" in df.columns else np.ones(n, np.float32),
    }
    if "face" in df.columns:  # several faces per frame (`auhm synth --layout crowd`): one row each
        columns["face"] = df["face"].to_numpy(np.int64)
    columns |= {c: df[c].to_numpy(np.float32) for c in X_COLUMNS + Y_COLUMNS}
    out = pd.DataFrame(columns)
    out.loc[~out[X_COLUMNS + Y_COLUMNS].notna().all(axis=1), "success"] = False
    return out.drop_duplicates(["frame", "face"] if "face" in out else "frame").set_index("frame")


@register_backend("truth", forkable=True)
class TruthBackend(LandmarkBackend):
    name = "truth"

    def __init__(self, truth: Path | None = None):
        self.truth = Path(truth) if truth is not None else None
        self.sidecar: Path | None = None
        self._table: pd.DataFrame | None = None
        self._faces: dict[int, list[np.ndarray]] | None = None

    def start(self, video: str) -> None:
        self.sidecar = find_sidecar(video, self.truth)
        self._table = read_sidecar(self.sidecar, video)
        self._faces = None

    def read(self, indices: np.ndarray, timestamps: np.ndarray) -> FaceTrack:
        if self._table is None:
            raise RuntimeError("truth backend: start(video) must be called before reading frames")
        track = FaceTrack.empty(indices, timestamps)
        table = self._table
        if table.index.has_duplicates:  # several faces a frame, one followed: the largest (as a detector's choice)
            width = table[X_COLUMNS].max(axis=1) - table[X_COLUMNS].min(axis=1)
            table = table.assign(_w=width.fillna(-1)).sort_values("_w", ascending=False, kind="stable")
            table = table[~table.index.duplicated()]
        rows = table.reindex(np.asarray(indices, np.int64))
        ok = rows["success"].fillna(False).to_numpy(bool)
        xy = np.stack([rows[X_COLUMNS].to_numpy(np.float32), rows[Y_COLUMNS].to_numpy(np.float32)], axis=-1)
        track.success[:] = ok
        track.confidence[ok] = rows["confidence"].to_numpy(np.float32)[ok]
        track.landmarks[ok] = xy[ok]
        track.boxes[ok] = landmark_boxes(xy[ok])
        return track

    def read_faces(self, indices: np.ndarray) -> list[list[np.ndarray]]:
        """Every face the sidecar lists in each frame, (68, 2) landmarks each (a sidecar with a
        ``face`` column lists several; the multi-face tracker gives them ids of its own)."""
        if self._faces is None:
            table = self._table.reset_index()
            table = table[table["success"].to_numpy(bool)]
            if "face" in table.columns:
                table = table.sort_values(["frame", "face"], kind="stable")
            xy = np.stack([table[X_COLUMNS].to_numpy(np.float32), table[Y_COLUMNS].to_numpy(np.float32)], axis=-1)
            self._faces = {}
            for frame, points in zip(table["frame"].to_numpy(np.int64), xy):
                self._faces.setdefault(int(frame), []).append(points)
        return [self._faces.get(int(i), []) for i in indices]

    def detect(self, frames: np.ndarray) -> list[list[Detection]]:
        raise NotImplementedError("truth backend reads landmarks by frame number; use Tracker.update")

    def fit(self, frames: np.ndarray, regions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError("truth backend reads landmarks by frame number; use Tracker.update")

    def metadata(self) -> dict:
        return {"backend": self.name, "truth": str(self.truth) if self.truth else TRUTH_DIR}
