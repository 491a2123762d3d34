"""Annotation output: per-video Parquet tables streamed atomically (``io.ParquetStream``), resume planning, the merge.

Each video's table is written as it goes (row groups) to a temporary file that is renamed into
place only when the video is complete, so a killed run leaves only whole videos behind and a
re-run skips them — per-video files in a directory, or parts in ``<out>.parts/`` merged into one
file at the end. A video is done when it was made the same way: same checkpoint, landmark
backend, landmark model and ``--every`` (:data:`RESUME_KEY`). A single output file keeps the
videos it already holds: a run adds its videos to them, and only ``--overwrite`` starts afresh.
One run writes an output at a time (:func:`output_lock`).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from auhm.errors import UsageError
from auhm.face.entries import row_layout
from auhm.io import ParquetStream, prediction_schema, read_metadata
from auhm.landmarks import backend_name


def chunk_rows(video: str, chunk, schema: pa.Schema, aus: Sequence[int]) -> pa.RecordBatch:
    """One row per face of each frame of a scored chunk, in frame then face order; a frame with no
    face keeps one row (``success`` false, null face, box and AUs)."""
    m = len(chunk.rows)
    frame_row, entry = row_layout(len(chunk.indices), chunk.rows, chunk.faces)
    success = entry >= 0
    face = np.where(success, chunk.faces[np.maximum(entry, 0)] if m else 0, 0)
    entry = np.maximum(entry, 0)
    null = ~success
    total = len(frame_row)
    cols = [
        pa.array([video] * total, pa.string()),
        pa.array(chunk.indices[frame_row].astype(np.int32)),
        pa.array(chunk.timestamps[frame_row].astype(np.float64)),
        pa.array(face.astype(np.int16), mask=null),
        pa.array(success),
        pa.array(np.where(success, chunk.confidence[entry] if m else 0.0, 0.0).astype(np.float32)),
    ]
    boxes = chunk.boxes[entry] if m else np.full((total, 4), np.nan, np.float32)
    cols += [pa.array(boxes[:, j], pa.float32(), mask=null) for j in range(4)]
    intens = chunk.intensities[entry] if (m and chunk.intensities is not None) else np.full((total, len(aus)), np.nan, np.float32)
    cols += [pa.array(intens[:, j].astype(np.float32), pa.float32(), mask=null) for j in range(len(aus))]
    return pa.RecordBatch.from_arrays(cols, schema=schema)


# ── planning and resume ─────────────────────────────────────────────────────────────────────
@dataclass
class VideoJob:
    video: str  # path as given
    dest: Path  # the video's final table (per-video file, or part)


def output_names(videos: Sequence[str]) -> list[str]:
    """A file name per video: its stem, plus a short path hash where stems collide."""
    stems = [Path(v).stem for v in videos]
    counts = {s: stems.count(s) for s in stems}
    return [f"{s}.parquet" if counts[s] == 1 else f"{s}-{hashlib.sha1(v.encode()).hexdigest()[:8]}.parquet" for s, v in zip(stems, videos)]


# What makes two annotations of a video differ: their rows depend on nothing else that resume checks.
RESUME_KEY = ("checkpoint", "landmark_backend", "landmark_model", "every", "faces", "tracking")
_SETTING = {"checkpoint": "checkpoint", "landmark_backend": "landmarks", "landmark_model": "landmark model", "every": "--every",
            "faces": "--faces", "tracking": "tracking"}


def landmarks_now(name: str | None) -> str | None:
    """A recorded ``landmark_backend`` ("dlib", "backbone+opencv" …) with every backend named as it
    is now: older outputs say "auhm" for the network backend."""
    return "+".join(backend_name(part) for part in name.split("+")) if isinstance(name, str) else name


def made_differently(have: dict, meta: dict) -> str | None:
    """None when a table's metadata ``have`` says it was made the way ``meta`` asks; else which
    settings differ, in words (hashes shortened)."""
    def show(v):
        return "none" if v is None else (v[:12] if isinstance(v, str) and len(v) == 64 else str(v))

    have, meta = ({**m, "landmark_backend": landmarks_now(m.get("landmark_backend")), "faces": m.get("faces", "largest")} for m in (have, meta))
    diffs = [f"{_SETTING[k]} {show(have.get(k))} → {show(meta.get(k))}" for k in RESUME_KEY if have.get(k) != meta.get(k)]
    return ", ".join(diffs) or None


def done_part(dest: Path, video: str, meta: dict) -> tuple[dict | None, str | None]:
    """(its notes, None) when ``dest`` holds this video's complete table made the way ``meta`` asks;
    (None, how it differs) for one made otherwise; (None, None) when there is none."""
    if not dest.is_file():
        return None, None
    try:
        have = read_metadata(dest)
    except Exception:
        return None, None
    if have.get("video") != video:
        return None, None
    differs = made_differently(have, meta)
    return (None, differs) if differs else (have.get("notes") or {}, None)


@dataclass
class Held:
    """What a single output file already holds: its videos in file order, how they were made,
    and what was noted about each."""

    path: Path
    videos: list[str]
    meta: dict

    @classmethod
    def read(cls, path: Path) -> "Held":
        try:
            meta = read_metadata(path)
            videos = pq.read_table(path, columns=["video"]).column("video").unique().to_pylist()
        except Exception as e:
            raise UsageError(f"--out {path}: exists but cannot be read as auhm predictions ({type(e).__name__}); "
                             "--overwrite replaces it") from None
        if "checkpoint" not in meta:
            raise UsageError(f"--out {path}: exists but was not written by auhm annotate; --overwrite replaces it")
        return cls(path, videos, meta)

    def notes(self, video: str) -> dict:
        return (self.meta.get("videos") or {}).get(video) or {}


@dataclass
class Plan:
    """What a run does with each video: annotate it, or take it as done (from the output file it
    already sits in, or from a part a killed run left)."""

    todo: list[VideoJob] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    redone: dict[str, list[str]] = field(default_factory=dict)  # how they were made differently -> videos
    notes: dict[str, dict] = field(default_factory=dict)  # video -> notes of the videos taken as done
    held: Held | None = None  # the single output file as it was
    keep: list[str] = field(default_factory=list)  # its videos that stay in it


def plan_jobs(jobs: Sequence[VideoJob], meta: dict, out: Path, per_video: bool, overwrite: bool) -> Plan:
    """Which videos to annotate and which are done. A single output file made another way that
    holds videos this run does not redo is a UsageError: they would be mixed with other rows."""
    plan = Plan()
    if not per_video and out.exists() and not overwrite:
        plan.held = Held.read(out)
    held = plan.held
    held_differs = made_differently(held.meta, meta) if held else None
    held_videos = set(held.videos) if held else set()
    for job in jobs:
        if overwrite:
            plan.todo.append(job)
            continue
        if job.video in held_videos and not held_differs:
            plan.skipped.append(job.video)
            plan.notes[job.video] = held.notes(job.video)
            continue
        notes, differs = done_part(job.dest, job.video, meta)
        if notes is not None:
            plan.skipped.append(job.video)
            plan.notes[job.video] = notes
            continue
        differs = held_differs if job.video in held_videos else differs
        if differs:
            plan.redone.setdefault(differs, []).append(job.video)
        plan.todo.append(job)
    if per_video and out.is_dir() and not overwrite:
        _refuse_mixed_folder(out, {job.dest for job in jobs}, meta)
    if held is not None:
        redo = {job.video for job in plan.todo}
        plan.keep = [v for v in held.videos if v not in redo]
        if held_differs and plan.keep:
            raise UsageError(f"--out {out} holds {len(plan.keep)} video(s) made with other settings ({held_differs}) "
                             "that this run does not redo: --overwrite replaces the file, or choose another --out")
    return plan


def _refuse_mixed_folder(out: Path, dests: set[Path], meta: dict) -> None:
    """A --per-video folder holds one way of annotating: a file there of a video this run does not
    redo, made with other settings, is a UsageError (as for a single output file)."""
    for path in sorted(out.glob("*.parquet")):
        if path.name.startswith(".") or path in dests:
            continue
        try:
            differs = made_differently(read_metadata(path), meta)
        except Exception:
            continue  # not an auhm table: not ours to judge
        if differs:
            raise UsageError(f"--out {out} holds {path.name}, made with other settings ({differs}), that this run does not redo: "
                             "annotate it again with these settings too, --overwrite, or choose another folder")


def merge_output(plan: Plan, jobs: Sequence[VideoJob], done: set[str], out: Path, aus: Sequence[int], meta: dict,
                 notes: dict[str, dict]) -> bool:
    """Write ``out`` (atomically): the videos it held and keeps, in file order, then the videos
    done from parts, in input order; ``notes`` per video go into its metadata. False, and ``out``
    left as it was, when that would change nothing (no part to add, no held video to drop) or
    lose a video it held (one whose redo failed)."""
    parts = [j for j in jobs if j.video in done and j.video not in set(plan.keep)]
    if not parts and (plan.held is None or plan.keep == plan.held.videos):
        return False
    if plan.held is not None and set(plan.held.videos) - set(plan.keep) - done:
        return False
    videos = plan.keep + [j.video for j in parts]
    writer = ParquetStream(out, prediction_schema(aus, {**meta, "videos": {v: notes.get(v, {}) for v in videos}}))
    try:
        if plan.keep:
            keep = pa.array(plan.keep)
            held = pq.ParquetFile(plan.held.path)
            for g in range(held.num_row_groups):
                table = held.read_row_group(g)
                table = table.filter(pc.is_in(table.column("video"), value_set=keep))
                for b in table.to_batches():
                    writer.append(pa.RecordBatch.from_arrays(b.columns, schema=writer.schema))
        for job in parts:
            pf = pq.ParquetFile(job.dest)
            for g in range(pf.num_row_groups):
                for b in pf.read_row_group(g).to_batches():
                    writer.append(pa.RecordBatch.from_arrays(b.columns, schema=writer.schema))
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    return True


@contextlib.contextmanager
def output_lock(out: Path, say: Callable[[str], None]) -> Iterator[None]:
    """Hold an OS file lock beside ``out`` while a run writes it. A second run on the same output
    waits for the first, then resumes from what it wrote; a run that dies (even by kill -9)
    releases the lock with its process."""
    from filelock import FileLock, Timeout

    path = out.with_name(f".{out.name}.lock")
    lock = FileLock(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            lock.acquire(timeout=0)
        except Timeout:
            say(f"annotate: another run is writing {out}; waiting for it to finish (its lock: {path})")
            lock.acquire()
    except OSError as e:
        raise UsageError(f"--out {out}: cannot take the lock {path} ({e.strerror or type(e).__name__})") from None
    try:
        yield
    finally:
        lock.release()
