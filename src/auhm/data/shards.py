"""Training shards: one Parquet file per video of JPEG face crops, crop-space landmarks and labels.

Shards are written whole and atomically (temp + rename), so a shard that exists is complete
and ``prepare`` can resume by skipping them. Reading keeps the encoded crops in Arrow buffers
(shared copy-on-write by DataLoader workers) and decodes one JPEG per item.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from auhm.io import au_columns, write_parquet_atomic
from auhm.targets import au_name


def shard_schema(aus: Sequence[int], metadata: dict | None = None) -> pa.Schema:
    from auhm.io import encode_metadata

    fields = [
        pa.field("video", pa.string()),
        pa.field("subject", pa.string()),
        pa.field("split", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("image", pa.binary()),  # JPEG, crop_size × crop_size RGB
        pa.field("landmarks", pa.list_(pa.float32(), 136)),  # x0, y0, x1, y1 … in crop pixels
        pa.field("crop_affine", pa.list_(pa.float32(), 6)),  # frame → crop, row-major 2×3
    ] + [pa.field(au_name(a), pa.float32()) for a in aus]
    return pa.schema(fields, metadata=encode_metadata(metadata or {}))


def encode_jpeg(image_rgb: np.ndarray, quality: int = 92) -> bytes:
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return buf.tobytes()


_DECODE_FLAGS = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4, 8: cv2.IMREAD_REDUCED_COLOR_8}


def decode_jpeg(data: bytes, reduce: int = 1) -> np.ndarray:
    """RGB pixels of a JPEG; ``reduce`` 2, 4 or 8 decodes at 1/reduce of the side straight from the
    DCT coefficients: faster than a full decode, and an anti-aliased downscale (pixel i covers source pixels
    reduce·i … reduce·i + reduce − 1, so a point x lands at (x + 0.5) / reduce − 0.5)."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), _DECODE_FLAGS[reduce])
    if img is None:
        raise ValueError("corrupt JPEG in shard")
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def jpeg_reduction(stored: int, wanted: int) -> int:
    """The largest decode reduction (1, 2, 4 or 8) that keeps a ``stored``-pixel side at ≥ ``wanted``
    (1 for crops stored smaller than wanted: they are scaled up)."""
    return max((r for r in _DECODE_FLAGS if stored // r >= wanted), default=1)


@dataclass
class ShardRows:
    """Columns of one shard, filled row by row then written at once: one video's frames, or a
    batch of still images, each row then naming its own video (image), subject and split."""

    video: str
    subject: str
    split: str
    aus: Sequence[int]

    def __post_init__(self) -> None:
        self.videos: list[str] = []
        self.subjects: list[str] = []
        self.splits: list[str] = []
        self.frames: list[int] = []
        self.images: list[bytes] = []
        self.landmarks: list[np.ndarray] = []
        self.affines: list[np.ndarray] = []
        self.labels: list[np.ndarray] = []

    def add(self, frame: int, crop_rgb: np.ndarray, landmarks_crop: np.ndarray, affine: np.ndarray, labels: np.ndarray,
            video: str | None = None, subject: str | None = None, split: str | None = None) -> None:
        """One row; ``video``, ``subject`` and ``split`` default to the shard's."""
        self.videos.append(self.video if video is None else video)
        self.subjects.append(self.subject if subject is None else subject)
        self.splits.append(self.split if split is None else split)
        self.frames.append(int(frame))
        self.images.append(encode_jpeg(crop_rgb))
        self.landmarks.append(np.asarray(landmarks_crop, np.float32).reshape(136))
        self.affines.append(np.asarray(affine, np.float32).reshape(6))
        self.labels.append(np.asarray(labels, np.float32))

    def __len__(self) -> int:
        return len(self.frames)

    def write(self, path: str | os.PathLike, metadata: dict | None = None) -> Path:
        n = len(self.frames)
        labels = np.stack(self.labels) if n else np.zeros((0, len(self.aus)), np.float32)
        cols = {
            "video": pa.array(self.videos, pa.string()),
            "subject": pa.array(self.subjects, pa.string()),
            "split": pa.array(self.splits, pa.string()),
            "frame": pa.array(self.frames, pa.int32()),
            "image": pa.array(self.images, pa.binary()),
            "landmarks": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(self.landmarks) if n else [], pa.float32()), 136),
            "crop_affine": pa.FixedSizeListArray.from_arrays(pa.array(np.concatenate(self.affines) if n else [], pa.float32()), 6),
        }
        for j, a in enumerate(self.aus):
            v = labels[:, j]
            cols[au_name(a)] = pa.array(v, pa.float32(), mask=np.isnan(v))
        schema = shard_schema(self.aus, metadata)
        table = pa.table(cols, schema=schema)
        return write_parquet_atomic(table, path)


class ShardDataset:
    """Random access over the frames of some shards (a torch-style map dataset).

    Items are dicts: ``image`` uint8 (S, S, 3) RGB, ``landmarks`` float32 (68, 2) crop pixels,
    ``labels`` float32 (N_aus,) with NaN where unlabelled, plus ``video``/``frame``/``subject``.
    """

    def __init__(self, paths: Iterable[str | os.PathLike], aus: Sequence[int] | None = None, splits: Sequence[str] | None = None):
        tables = []
        for p in sorted(Path(x) for x in paths):
            t = pq.read_table(p)
            if splits is not None:
                import pyarrow.compute as pc

                t = t.filter(pc.is_in(t["split"], value_set=pa.array(list(splits), pa.string())))
            if t.num_rows:
                tables.append(t)
        if not tables:
            raise ValueError("no frames in the selected shards" + (f" for splits {list(splits)}" if splits else ""))
        if aus is None:
            aus = [int(c[2:]) for c in au_columns(tables[0].column_names)]
        self.aus = list(aus)
        cols = [au_name(a) for a in self.aus]
        for t in tables:
            missing = [c for c in cols if c not in t.column_names]
            if missing:
                raise ValueError(f"shard lacks AU columns {missing}")
        table = pa.concat_tables([t.select(["video", "subject", "split", "frame", "image", "landmarks", "crop_affine"] + cols) for t in tables])
        self._images = table["image"].combine_chunks()
        self.landmarks = table["landmarks"].combine_chunks().flatten().to_numpy().reshape(-1, 68, 2).astype(np.float32)
        self.affines = table["crop_affine"].combine_chunks().flatten().to_numpy().reshape(-1, 2, 3).astype(np.float64)  # frame → crop
        self.labels = np.stack([table[c].to_numpy(zero_copy_only=False).astype(np.float32) for c in cols], axis=1) if cols else np.zeros((table.num_rows, 0), np.float32)
        self.video = table["video"].to_numpy(zero_copy_only=False)
        self.subject = table["subject"].to_numpy(zero_copy_only=False)
        self.split = table["split"].to_numpy(zero_copy_only=False)
        self.frame = table["frame"].to_numpy().astype(np.int64)

    def __len__(self) -> int:
        return len(self.frame)

    def image(self, i: int, reduce: int = 1) -> np.ndarray:
        return decode_jpeg(self._images[i].as_py(), reduce)

    def image_side(self, i: int) -> int:
        """The side of crop ``i``, read from its JPEG header: no decode."""
        import io

        from PIL import Image

        with Image.open(io.BytesIO(self._images[i].as_py())) as img:
            return img.size[0]

    def __getitem__(self, i: int) -> dict:
        return {
            "image": self.image(i),
            "landmarks": self.landmarks[i].copy(),
            "labels": self.labels[i].copy(),
            "index": i,
        }


def list_shards(data_dir: str | os.PathLike) -> list[Path]:
    """The complete shards of a prepared corpus (temp files of an interrupted run excluded)."""
    return sorted(p for p in (Path(data_dir) / "shards").glob("*.parquet") if not p.name.startswith("."))
