"""Tables auhm reads and writes: the prediction schema, labels, atomic Parquet writes.

Every table keys frames by ``video`` (path as given) and 0-based ``frame``; AU columns are
``AU01``, ``AU02``… (float32, null where unknown).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auhm import __version__
from auhm.errors import InputFailure, UsageError
from auhm.targets import MAX_INTENSITY, au_name, parse_au

# Columns of a prediction table before the AU columns.
PREDICTION_FIELDS: list[pa.Field] = [
    pa.field("video", pa.string()),
    pa.field("frame", pa.int32()),
    pa.field("timestamp", pa.float64()),
    pa.field("face", pa.int16()),
    pa.field("success", pa.bool_()),
    pa.field("confidence", pa.float32()),
    pa.field("x0", pa.float32()),
    pa.field("y0", pa.float32()),
    pa.field("x1", pa.float32()),
    pa.field("y1", pa.float32()),
]

_AU_COLUMN = re.compile(r"^AU(\d+)$")


def prediction_schema(aus: Iterable[int], metadata: dict | None = None) -> pa.Schema:
    """The prediction schema for these AUs, with auhm's key-value metadata attached."""
    fields = PREDICTION_FIELDS + [pa.field(au_name(a), pa.float32()) for a in aus]
    return pa.schema(fields, metadata=encode_metadata(metadata or {}))


def encode_metadata(meta: dict) -> dict[bytes, bytes]:
    """Parquet key-value metadata: every value JSON-encoded under an ``auhm.`` key."""
    meta = {"version": __version__, **meta}
    return {f"auhm.{k}".encode(): json.dumps(v).encode() for k, v in meta.items()}


def read_metadata(path: str | os.PathLike) -> dict:
    """auhm's key-value metadata of a Parquet file (empty for other files): the schema's, and
    what a writer added to the footer when it closed.

    ``checkpoint`` is the checkpoint's sha256 in every file; files of ``auhm evaluate`` from
    before kept it as ``checkpoint_sha256`` beside the path, and are read as the newer ones.
    """
    kv = pq.read_metadata(path).metadata or {}
    out = {}
    for k, v in kv.items():
        k = k.decode()
        if k.startswith("auhm."):
            out[k[5:]] = json.loads(v.decode())
    if "checkpoint_sha256" in out:
        out["checkpoint_path"] = out.get("checkpoint")
        out["checkpoint"] = out.pop("checkpoint_sha256")
    return out


def file_sha256(path: str | os.PathLike) -> str:
    """The sha256 of a file's bytes: how output metadata names the checkpoint it was made with."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def au_columns(columns: Iterable[str]) -> list[str]:
    """The AU columns of a table, in numeric AU order."""
    found = [c for c in columns if _AU_COLUMN.match(str(c))]
    return sorted(found, key=parse_au)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp") -> Iterator[str]:
    """A temp file beside ``path`` to write into; renamed onto ``path`` only if the block succeeds.

    Readers (and resumed runs) never see half a file: it is whole or absent. Temp names start
    with a dot, so globs of finished outputs skip them.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(fd)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def with_people(table: pa.Table, people: dict[int, int], moved: dict[int, dict[int, int]] | None = None) -> pa.Table:
    """``table`` with each face id replaced by its person's (tracks joined after the video); a
    null face stays null, an id not in ``people`` stays itself. ``moved`` (id → {frame: id}) first
    gives the rows of an id on some frames another id (rows a fit held after it slid onto another
    face)."""
    face = table.column("face")
    if moved:
        frame = table.column("frame").to_numpy()
        present = np.asarray(face.is_valid())
        written = pc.fill_null(face, 0).to_numpy()
        ids = written.copy()
        for old, to in moved.items():
            rows = np.flatnonzero(present & (written == old) & np.isin(frame, list(to)))
            ids[rows] = [to[int(f)] for f in frame[rows]]
        face = pa.chunked_array([pa.array(ids, face.type, mask=~present)])
    where = pc.index_in(face, value_set=pa.array(list(people), face.type))
    joined = pc.take(pa.array(list(people.values()), face.type), where)
    return table.set_column(table.schema.get_field_index("face"), table.schema.field("face"), pc.coalesce(joined, face))


class ParquetStream:
    """Row groups appended as they come to a temp file (:func:`atomic_path`), renamed into place
    by :meth:`commit`: a reader never sees half a file, and memory stays flat however long the
    stream. Batches are gathered into row groups of ``row_group_rows``."""

    def __init__(self, path: str | os.PathLike, schema: pa.Schema, row_group_rows: int = 4096):
        self.path = Path(path)
        self.schema = schema
        self.row_group_rows = row_group_rows
        self._place = atomic_path(self.path)
        self.tmp = self._place.__enter__()
        self._writer = pq.ParquetWriter(self.tmp, schema)
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self.rows_written = 0

    def append(self, rows: pa.RecordBatch | pa.Table) -> None:
        for batch in rows.to_batches() if isinstance(rows, pa.Table) else [rows]:
            self._pending.append(batch)
            self._rows += batch.num_rows
        if self._rows >= self.row_group_rows:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self.rows_written += self._rows
            self._pending, self._rows = [], 0

    def commit(self, metadata: dict | None = None, rewrite: Callable[[pa.Table], pa.Table] | None = None) -> None:
        """Close and rename into place; ``metadata`` (what was learnt while writing) goes into the
        file's footer under ``auhm.`` keys, beside the schema's. ``rewrite`` (the whole table →
        the table kept) changes what only the end could tell (face ids joined into people): the
        file is read back once and written anew before it is placed."""
        self._flush()
        if metadata:
            self._writer.add_key_value_metadata({f"auhm.{k}": json.dumps(v) for k, v in metadata.items()})
        self._writer.close()
        if rewrite is not None:
            footer = {k: v for k, v in (pq.read_metadata(self.tmp).metadata or {}).items() if k != b"ARROW:schema"}
            table = rewrite(pq.read_table(self.tmp))
            pq.write_table(table.replace_schema_metadata({**(table.schema.metadata or {}), **footer}), self.tmp, row_group_size=self.row_group_rows)
        self._place.__exit__(None, None, None)  # renames the temp file onto the path

    def abort(self) -> None:
        """Close and remove the temp file; ``path`` stays as it was."""
        with contextlib.suppress(Exception):
            self._writer.close()
        with contextlib.suppress(Exception):
            self._place.__exit__(RuntimeError, RuntimeError("aborted"), None)  # removes the temp file

    def __enter__(self) -> "ParquetStream":
        return self

    def __exit__(self, kind, *exc) -> None:
        """Commits when the block succeeds (unless committed already), aborts when it raises."""
        if kind is None:
            if not self._writer.is_open:
                return
            self.commit()
        else:
            self.abort()


def check_writable(path: str | os.PathLike, option: str = "--out", directory: bool = False) -> None:
    """UsageError naming ``path`` unless an output can be written there: a file, or with
    ``directory`` files inside a folder. Checked before any work, by writing (and removing) a
    temp file in the nearest folder that exists: permissions alone do not tell (root, read-only
    mounts)."""
    path = Path(path)
    if not directory and path.is_dir():
        raise UsageError(f"{option} {path}: is a directory, not a file")
    folder = path if directory else path.parent
    existing = folder
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{option} {path}: {existing} is a file, not a folder")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".auhm-write-check.", dir=existing)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write in {existing} ({e.strerror or type(e).__name__})") from None


def write_parquet_atomic(table: pa.Table | pd.DataFrame, path: str | os.PathLike, schema: pa.Schema | None = None) -> Path:
    """Write a Parquet file so that a reader never sees half of it."""
    if isinstance(table, pd.DataFrame):
        table = pa.Table.from_pandas(table, schema=schema, preserve_index=False)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return Path(path)


def write_json_atomic(obj, path: str | os.PathLike) -> Path:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(json.dumps(obj, indent=2, default=str))
    return Path(path)


def clean_labels(df: pd.DataFrame) -> pd.DataFrame:
    """AU values outside 0–5 (9 marks an unlabelled frame) become null; AU columns float32."""
    df = df.copy()
    for c in au_columns(df.columns):
        v = pd.to_numeric(df[c], errors="coerce").astype("float32")
        df[c] = v.where((v >= 0) & (v <= MAX_INTENSITY))
    return df


def _openface_to_auhm(df: pd.DataFrame, source: str) -> pd.DataFrame:
    df = df.rename(columns=lambda c: str(c).strip())
    out = pd.DataFrame(index=df.index)
    out["video"] = df["video"] if "video" in df else Path(source).stem
    out["frame"] = df["frame"].astype("int32") - 1  # OpenFace numbers frames from 1
    out["timestamp"] = df.get("timestamp", pd.Series(np.nan, index=df.index)).astype("float64")
    out["face"] = df.get("face_id", pd.Series(0, index=df.index)).astype("int16")
    out["success"] = df.get("success", pd.Series(1, index=df.index)).astype(bool)
    out["confidence"] = df.get("confidence", pd.Series(np.nan, index=df.index)).astype("float32")
    for c in df.columns:
        m = re.match(r"^AU(\d+)_r$", c)
        if m:
            out[au_name(int(m.group(1)))] = df[c].astype("float32").where(out["success"])
    return out


def read_predictions(path: str | os.PathLike, failures: list[InputFailure] | None = None) -> pd.DataFrame:
    """Any prediction table: an auhm Parquet file, an OpenFace 2.2 or py-feat CSV, or a directory of
    Parquet files (or, where it holds none, of CSVs).

    With a ``failures`` list, an unreadable file in a directory is appended to it as an
    ``InputFailure`` and the others are still read; without one it raises.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(p for p in path.glob("*.parquet") if not p.name.startswith("."))
        files = files or sorted(p for p in path.glob("*.csv") if not p.name.startswith("."))  # e.g. OpenFace's, one per video
        if not files:
            raise ValueError(f"{path}: directory holds no .parquet or .csv prediction files")
        tables = []
        for f in files:
            try:
                tables.append(read_predictions(f))
            except (OSError, ValueError, pa.ArrowException) as e:
                if failures is None:
                    raise
                failures.append(InputFailure(str(f), f"cannot read predictions ({e})"))
        if not tables:
            raise ValueError(f"{path}: none of its {len(files)} .parquet files could be read")
        return pd.concat(tables, ignore_index=True)
    if path.suffix.lower() == ".csv":
        df = pd.read_csv(path, skipinitialspace=True)
        df.columns = [str(c).strip() for c in df.columns]
        if any(re.match(r"^AU\d+_r$", c) for c in df.columns):
            return _openface_to_auhm(df, str(path))
        from auhm.interop.pyfeat import is_pyfeat, pyfeat_to_auhm

        if is_pyfeat(df.columns):
            return pyfeat_to_auhm(df, str(path))
        return clean_labels(df)
    df = pd.read_parquet(path)
    if "success" in df:
        for c in au_columns(df.columns):
            df.loc[~df["success"].astype(bool), c] = np.nan
    return df


def read_labels(path: str | os.PathLike) -> pd.DataFrame:
    """A labels table (Parquet or CSV with video, frame, AUxx), cleaned of out-of-range codes."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file")
    df = pd.read_csv(path) if path.suffix.lower() == ".csv" else pd.read_parquet(path)
    missing = {"video", "frame"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: labels table lacks columns {sorted(missing)}")
    return clean_labels(df)
