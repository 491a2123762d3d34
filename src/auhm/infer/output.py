"""Annotation output: per-video Parquet tables streamed atomically, resume planning, the merge.

Each video's table is written as it goes (row groups) to a temporary file that is renamed into
place only when the video is complete, so a killed run leaves only whole videos behind and a
re-run skips them (same checkpoint hash) — per-video files in a directory, or parts in
``<out>.parts/`` merged into one file at the end.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from auhm.io import atomic_path, prediction_schema, read_metadata

ROW_GROUP_ROWS = 4096


class AtomicParquetStream:
    """Row groups appended as they come to a temp file (``io.atomic_path``), renamed into place on commit."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        self._place = atomic_path(path)
        self.tmp = self._place.__enter__()
        self._writer = pq.ParquetWriter(self.tmp, schema)
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self.rows_written = 0

    def append(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self.rows_written += self._rows
            self._pending, self._rows = [], 0

    def commit(self) -> None:
        self._flush()
        self._writer.close()
        self._place.__exit__(None, None, None)  # renames the temp file onto the path

    def abort(self) -> None:
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(Exception):
            self._place.__exit__(RuntimeError, RuntimeError("aborted"), None)  # removes the temp file


def chunk_rows(video: str, chunk, schema: pa.Schema, aus: Sequence[int]) -> pa.RecordBatch:
    """One row per frame of a scored chunk; null box and AUs where there is no face."""
    n = len(chunk.indices)
    null = ~chunk.success
    cols = [
        pa.array([video] * n, pa.string()),
        pa.array(chunk.indices.astype(np.int32)),
        pa.array(chunk.timestamps.astype(np.float64)),
        pa.array(np.zeros(n, np.int16)),
        pa.array(chunk.success),
        pa.array(chunk.confidence.astype(np.float32)),
    ]
    cols += [pa.array(chunk.boxes[:, j], pa.float32(), mask=null) for j in range(4)]
    intens = chunk.intensities if chunk.intensities is not None else np.full((n, len(aus)), np.nan, np.float32)
    cols += [pa.array(intens[:, j], pa.float32(), mask=null) for j in range(len(aus))]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


# ── planning and resume ─────────────────────────────────────────────────────────────────────
def file_sha256(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class VideoJob:
    video: str  # path as given
    dest: Path  # the video's final table (per-video file, or part)


def output_names(videos: Sequence[str]) -> list[str]:
    """A file name per video: its stem, plus a short path hash where stems collide."""
    stems = [Path(v).stem for v in videos]
    counts = {s: stems.count(s) for s in stems}
    return [f"{s}.parquet" if counts[s] == 1 else f"{s}-{hashlib.sha1(v.encode()).hexdigest()[:8]}.parquet" for s, v in zip(stems, videos)]


def is_done(dest: Path, video: str, meta: dict) -> bool:
    """True when ``dest`` holds this video's complete table, made the same way."""
    if not dest.is_file():
        return False
    try:
        have = read_metadata(dest)
    except Exception:
        return False
    return have.get("video") == video and all(have.get(k) == meta[k] for k in ("checkpoint", "every"))


def whole_file_done(out: Path, paths: Sequence[str], meta: dict) -> bool:
    """True when the single output file already holds every video, made the same way."""
    try:
        have = read_metadata(out)
        videos = set(pq.read_table(out, columns=["video"]).column("video").unique().to_pylist())
    except Exception:
        return False
    return all(have.get(k) == meta[k] for k in ("checkpoint", "every")) and set(paths) <= videos


def merge_parts(jobs: Sequence[VideoJob], out: Path, aus: Sequence[int], meta: dict) -> Path:
    """Concatenate the videos' part files, in input order, into ``out`` (atomically)."""
    writer = AtomicParquetStream(out, prediction_schema(aus, meta))
    try:
        for job in jobs:
            pf = pq.ParquetFile(job.dest)
            for g in range(pf.num_row_groups):
                for b in pf.read_row_group(g).to_batches():
                    writer.append(pa.RecordBatch.from_arrays(b.columns, schema=writer.schema))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return out
