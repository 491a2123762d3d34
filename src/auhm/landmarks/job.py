"""The ``auhm landmarks`` job: tracked 68-point landmarks for every decoded frame → one Parquet.

Each video's rows are held until its end (its tracks are then joined into people, which renames
face ids) and streamed into Parquet row groups (``io.ParquetStream``), so memory holds one
video's landmarks at most; the file appears under its final name only when the job ends. A
video that cannot be opened or decoded is reported as an InputFailure and the others go on;
frames decoded before a mid-stream decoding error are kept (they are real frames).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from auhm.console import progress
from auhm.errors import InputFailure, UsageError, failure_reason
from auhm.face.base import BackendUnavailable
from auhm.face.entries import FaceEntries, faces_of, row_layout
from auhm.face.multitrack import MultiTrackConfig, MultiTracker
from auhm.face.tracking import Tracker, TrackerConfig
from auhm.io import ParquetStream, check_writable, encode_metadata, with_people
from auhm.landmarks import check_backend, make_backend
from auhm.video import VideoError, VideoReader
from auhm.video.inputs import expand_inputs, known_length, nothing_matched


def landmark_schema(metadata: dict | None = None) -> pa.Schema:
    """video, frame, timestamp, face (track id; null without a face), success, confidence, x0, y0, x1, y1, x_0…x_67, y_0…y_67."""
    fields = [
        pa.field("video", pa.string()),
        pa.field("frame", pa.int32()),
        pa.field("timestamp", pa.float64()),
        pa.field("face", pa.int16()),
        pa.field("success", pa.bool_()),
        pa.field("confidence", pa.float32()),
    ]
    fields += [pa.field(c, pa.float32()) for c in ("x0", "y0", "x1", "y1")]
    fields += [pa.field(f"x_{k}", pa.float32()) for k in range(68)]
    fields += [pa.field(f"y_{k}", pa.float32()) for k in range(68)]
    return pa.schema(fields, metadata=encode_metadata(metadata or {}))


def track_table(video: str, found: FaceEntries, schema: pa.Schema) -> pa.Table:
    """One row group: a batch's faces as rows of the landmark schema (one per face, one for a frame without)."""
    frame_row, entry = row_layout(len(found.indices), found.rows, found.ids)
    ok, at = entry >= 0, np.maximum(entry, 0)
    n, m = len(frame_row), len(found.rows)
    pick = lambda a, fill: np.where(ok.reshape(-1, *[1] * (a.ndim - 1)), a[at], fill) if m else np.full((n, *a.shape[1:]), fill)  # noqa: E731
    boxes, landmarks = pick(found.boxes, np.nan), pick(found.landmarks, np.nan)
    columns = [
        pa.array([video] * n, pa.string()),
        pa.array(found.indices[frame_row].astype(np.int32)),
        pa.array(found.timestamps[frame_row].astype(np.float64)),
        pa.array(pick(found.ids, 0).astype(np.int16), mask=~ok),
        pa.array(ok),
        pa.array(pick(found.confidence, 0.0).astype(np.float32)),
    ]
    columns += [pa.array(boxes[:, j].astype(np.float32), pa.float32(), from_pandas=True) for j in range(4)]
    columns += [pa.array(landmarks[:, k, 0].astype(np.float32), pa.float32(), from_pandas=True) for k in range(68)]
    columns += [pa.array(landmarks[:, k, 1].astype(np.float32), pa.float32(), from_pandas=True) for k in range(68)]
    return pa.Table.from_arrays(columns, schema=schema)


@dataclass
class LandmarksConfig:
    backend: str = "dlib"
    model: Path | None = None  # landmark checkpoint for the network backend
    truth: Path | None = None  # sidecar file or folder for the truth backend
    device: str = "cpu"
    batch_size: int = 16
    tracker: TrackerConfig = field(default_factory=TrackerConfig)
    faces: str = "all"  # every face with its track id, or the largest one
    quiet: bool = False


@dataclass
class LandmarksResult:
    out: Path
    videos: int = 0  # videos with at least one frame written
    frames: int = 0
    faces: int = 0  # frames with at least one face
    seconds: float = 0.0
    failures: list[InputFailure] = field(default_factory=list)
    faces_seen: dict[str, int] = field(default_factory=dict)  # videos where the detector saw more than one face


def extract_landmarks(videos: list[str], out: Path, config: LandmarksConfig = LandmarksConfig()) -> LandmarksResult:
    """Track landmarks through every video (paths, folders, globs or @list.txt) and write one row
    per decoded frame to ``out``. Inputs that name no video are failures; none at all, a UsageError."""
    import time

    if config.batch_size < 1:
        raise UsageError("--batch-size must be at least 1")
    check_backend(config.backend, config.model, choice="--backend", option="--model")
    check_writable(out)
    unmatched: list[InputFailure] = []
    videos = expand_inputs(videos, unmatched)
    if not videos:
        raise nothing_matched(unmatched)
    try:
        backend = make_backend(config.backend, model=config.model, truth=config.truth, device=config.device)
    except (ValueError, FileNotFoundError, BackendUnavailable) as e:  # a checkpoint of no use, a library or weights not installed
        raise UsageError(str(e)) from None
    if config.faces not in ("all", "largest"):
        raise UsageError(f"--faces {config.faces}: choose one of all, largest")
    tracker = MultiTracker(backend, MultiTrackConfig(tracker=config.tracker)) if config.faces == "all" else Tracker(backend, config.tracker)
    schema = landmark_schema(backend.metadata())
    result = LandmarksResult(Path(out), failures=unmatched)
    out = Path(out)
    start = time.perf_counter()
    notes: dict[str, dict] = {}  # per video, into the file's metadata: faces seen, frames missing
    with ParquetStream(out, schema, row_group_rows=config.batch_size) as stream, progress(config.quiet) as bar:
        task = bar.add_task("landmarks", total=None, unit="frames")
        for video in videos:
            bar.update(task, description=Path(video).name)
            n, faces, failure = _one_video(video, tracker, stream, schema, config.batch_size, lambda k: bar.advance(task, k))
            result.frames += n
            result.faces += faces
            result.videos += n > 0
            if failure is not None:
                result.failures.append(failure)
            if n:
                notes[video] = {"faces_seen": tracker.faces_seen} if tracker.detections else {}
                if failure is not None:
                    notes[video]["incomplete"] = failure.reason
                if tracker.faces_seen > 1:
                    result.faces_seen[video] = tracker.faces_seen
        if result.frames:
            stream.commit({"videos": notes})
        else:  # every video failed: the output is not written at all
            stream.abort()
    result.seconds = time.perf_counter() - start
    return result


def _write_people(tracker, tables: list[pa.Table], stream: ParquetStream) -> None:
    """A video's rows, each face id replaced by its person's (tracks joined after the video)."""
    people = tracker.people() if hasattr(tracker, "people") else None
    for table in tables:
        stream.append(with_people(table, people.ids, people.moved) if people is not None and people.renames else table)


def _one_video(video: str, tracker, stream: ParquetStream, schema: pa.Schema, batch_size: int, advance) -> tuple[int, int, InputFailure | None]:
    """(frames written, frames with a face, failure or None) for one video; a video that stops
    short of its end keeps the frames it decoded."""
    frames = faces = 0
    tables: list[pa.Table] = []  # the video's rows, held until its tracks are joined into people
    try:
        reader = VideoReader(video)
        tracker.start(video, known_length(video, reader.info.frames_claimed), reader.info.fps)
        for batch in reader.batches(batch_size):
            found = faces_of(tracker, batch)
            tables.append(track_table(video, found, schema))
            frames += len(batch)
            faces += len(np.unique(found.rows))
            advance(len(batch))
    except Exception as e:  # one broken input must not lose the others
        reason = failure_reason(e, video)
        if isinstance(e, VideoError) and frames:
            _write_people(tracker, tables, stream)
            reason = f"incomplete, {reason} (the frames decoded are kept)"
        return frames, faces, InputFailure(video, reason)
    _write_people(tracker, tables, stream)
    missing = reader.shortfall()
    return frames, faces, InputFailure(video, f"incomplete, {missing} (the frames decoded are kept)") if missing else None
