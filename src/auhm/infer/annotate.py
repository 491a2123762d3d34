"""Streaming, batched, resumable AU annotation of video corpora.

Three stages run at once, joined by bounded queues so memory stays flat whatever the video
length: decode + face tracking + cropping in ``workers`` workers (one video each: forked
processes for dlib and truth landmarks, threads for the torch backends), and the AU
model fed from the calling thread (torch releases the GIL): on a CPU as one single-threaded
forward per core side by side (:func:`model_lanes`), on a GPU one large batch at a time. Crops
from consecutive frames *and* from different videos share model batches, so short clips still
fill them.

Every decoded frame gets exactly one row; frames without a face get ``success = false`` and
null AUs. Each video's table is written as it goes (Parquet row groups) to a temporary file that
is renamed into place only when the video is complete, so a killed run leaves only whole
videos behind and a re-run skips them (same checkpoint hash) — per-video files in a directory,
or parts in ``<out>.parts/`` merged into one file at the end.

Tracking with the AU model's own backbone (``--landmarks auto`` on a transfer checkpoint): the
crop of a frame is cut from the landmarks the model predicted for the latest frame already
scored of that video, so with batching it lags by up to ``queue depth × batch`` frames. A frame
whose own predicted landmarks put the face more than ``refine_drift`` of the crop side away from
the crop it was cut with is re-cut from them and re-scored (one extra forward for those frames
only); a frame whose landmarks are not confident is re-detected. The lag therefore costs
forwards, never accuracy.
"""

from __future__ import annotations

import gc
import hashlib
import multiprocessing
import os
import queue
import shutil
import threading
from collections import deque
from concurrent import futures
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from auhm.console import console, progress
from auhm.device import autocast_context, model_input, resolve_device, resolve_precision, use_channels_last
from auhm.errors import InputFailure, UsageError
from auhm.face.crop import CropConfig, crop_affine, crop_image, crop_square, invert_affine, warp_points
from auhm.io import prediction_schema, read_metadata
from auhm.video import FrameBatch, VideoReader

ENGINES = ("local", "ray")
_ROW_GROUP_ROWS = 4096


@dataclass
class AnnotateConfig:
    model: Path
    out: Path = Path("predictions.parquet")
    landmarks: str = "auto"  # auto, auhm, dlib, fan or truth
    landmark_model: Path | None = None
    per_video: bool = False
    batch_size: int | None = None  # None: default_batch_size(device)
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None  # decode + tracking workers (local: processes or threads) or actors (ray); None: tracking_workers()
    every: int = 1
    overwrite: bool = False
    engine: str = "local"
    quiet: bool = False
    refine_drift: float = 0.10  # self-tracking: re-cut when the face moved more than this × crop side
    min_landmark_confidence: float | None = None  # self-tracking: below it the face is lost (None: the backbone's calibrated threshold, else 0.25)
    redetect_every: int = 10  # frames to wait after a failed search before searching again

    def check(self) -> None:
        if (self.batch_size is not None and self.batch_size < 1) or (self.workers is not None and self.workers < 1) or self.every < 1:
            raise UsageError("--batch-size, --workers and --every must be at least 1")
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: choose one of {', '.join(ENGINES)}")
        if not Path(self.model).is_file():
            raise UsageError(f"--model {self.model}: no such checkpoint")
        if self.per_video and Path(self.out).suffix.lower() == ".parquet":
            raise UsageError(f"--per-video writes a directory; --out {self.out} looks like a file")
        if not self.per_video and Path(self.out).is_dir():
            raise UsageError(f"--out {self.out} is a directory: add --per-video, or name a .parquet file")


@dataclass
class AnnotateResult:
    out: Path
    landmark_backend: str
    written: list[str] = field(default_factory=list)  # videos annotated in this run
    skipped: list[str] = field(default_factory=list)  # already done with the same checkpoint
    failures: list[InputFailure] = field(default_factory=list)
    frames: int = 0  # rows written in this run


# ── the model ───────────────────────────────────────────────────────────────────────────────
@dataclass
class Prediction:
    intensities: np.ndarray  # (B, N) float32, 0–5
    landmarks: np.ndarray | None = None  # (B, 68, 2) crop pixels (transfer methods)
    landmark_confidence: np.ndarray | None = None  # (B,) mean peak of the landmark maps
    heatmaps: np.ndarray | None = None  # (B, N, h, w) float32, only when asked for


def default_batch_size(device: torch.device) -> int:
    """Frames per model batch when --batch-size is not given.

    On CPUs small batches win: the paper-size AU-Net at bf16 ran 104 frames/s at batch 8 and
    60 at batch 32 on this project's 2-core Xeon (activations outgrow the cache). GPUs want
    large batches.
    """
    return 128 if device.type == "cuda" else 8


class Predictor:
    """An AU checkpoint ready for batched inference on uint8 crops: device, precision, layout."""

    def __init__(self, model: torch.nn.Module, info: dict, device: str = "auto", precision: str = "auto"):
        self.device = resolve_device(device)
        self.precision = resolve_precision(self.device, precision)
        self.channels_last = use_channels_last(self.device, self.precision)
        model = model.eval().to(self.device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.info = info
        self.aus = tuple(int(a) for a in info["aus"])
        self.method = str(info.get("method", "unknown"))
        self.input_size = int(info.get("input_size") or getattr(model, "input_size", 256))
        crop = CropConfig.from_dict(info.get("crop") or {})
        # The crop is cut directly at the model's input size (same square, no second resize).
        self.crop = CropConfig(size=self.input_size, scale=crop.scale, shift_y=crop.shift_y)
        # The backbone's landmarks can track the face only when they come out of a trained
        # landmark network (not the random-backbone ablation).
        probe = {}
        if self.method != "random-backbone":
            with torch.inference_mode():
                probe = self.model(torch.zeros(1, 3, self.input_size, self.input_size, device=self.device))
        self.has_landmarks = probe.get("landmark_heatmaps") is not None

    @classmethod
    def from_checkpoint(cls, path: str | os.PathLike, device: str = "auto", precision: str = "auto") -> "Predictor":
        from auhm.models import load_checkpoint

        model, info = load_checkpoint(path)
        return cls(model, info, device, precision)

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray, keep_heatmaps: bool = False) -> Prediction:
        from auhm.targets.heatmaps import heatmap_intensities, heatmaps_to_landmarks

        x = model_input(np.ascontiguousarray(crops), self.device, self.channels_last)
        with autocast_context(self.device, self.precision):
            out = self.model(x)
        if "intensities" in out and getattr(self.model, "output_kind", "heatmap") == "regression":
            intensities = out["intensities"].float().clamp(0, 5)
        else:
            intensities = heatmap_intensities(out["heatmaps"].float())
        pred = Prediction(intensities.cpu().numpy().astype(np.float32))
        if self.has_landmarks and out.get("landmark_heatmaps") is not None:
            pts, conf = heatmaps_to_landmarks(out["landmark_heatmaps"].float(), self.input_size)
            pred.landmarks = pts.cpu().numpy().astype(np.float32)
            conf = conf.float()
            pred.landmark_confidence = (conf.mean(-1) if conf.ndim > 1 else conf).cpu().numpy()
        if keep_heatmaps:
            pred.heatmaps = out["heatmaps"].float().cpu().numpy()
        return pred


# ── face tracking ───────────────────────────────────────────────────────────────────────────
@dataclass
class FaceSource:
    """How faces are found: a name for the metadata and a factory of per-thread backends."""

    name: str
    make_backend: Callable[[], object]  # -> auhm.face LandmarkBackend
    self_tracking: bool = False  # crops follow the AU model's own backbone landmarks
    spare: object | None = None  # a backend already made (to check the options), handed out first
    forkable: bool = False  # needs neither torch nor the model: tracking may run in forked processes
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def backend(self):
        """A backend of this thread's own (loading one can take a second: dlib's predictor)."""
        with self._lock:
            made, self.spare = self.spare, None
        return made if made is not None else self.make_backend()

    def tracker(self):
        from auhm.face import Tracker

        return Tracker(self.backend())

    def preload(self) -> "FaceSource":
        """Make the first backend now, unless it follows the model: a bad option fails here with
        the backend's own message, and forked tracking processes share it (dlib's predictor is
        70 MB: each of 2 tracking processes held ~75 MiB less of its own)."""
        if self.spare is None and not self.self_tracking:
            try:
                self.spare = self.make_backend()
            except (ValueError, RuntimeError) as e:
                raise UsageError(f"--landmarks {self.name}: {e}") from None
        return self


def _dlib_available() -> bool:
    from auhm.face.dlib_backend import check_available

    try:
        check_available()
        return True
    except RuntimeError:
        return False


def face_source(config: AnnotateConfig, predictor: Predictor) -> FaceSource:
    """The tracker the options ask for; ``auto`` prefers the model's own backbone landmarks.
    Nothing is loaded yet (dlib: 0.6–0.9 s): :meth:`FaceSource.preload` does it when there is work."""
    from auhm.face import make_backend

    name = config.landmarks
    if name == "auto":
        if predictor.has_landmarks:
            detector = "auhm" if config.landmark_model else "dlib"
            if detector == "dlib" and not _dlib_available():
                raise UsageError("--landmarks auto: the backbone tracks, but detection needs dlib or --landmark-model")
            return FaceSource(f"backbone+{detector}", lambda: make_backend(detector, model=config.landmark_model), True)
        if not _dlib_available():
            raise UsageError("--landmarks auto: this checkpoint has no landmark backbone and dlib is not installed")
        name = "dlib"
    return FaceSource(name, lambda: make_backend(name, model=config.landmark_model), forkable=name in ("dlib", "truth"))


# ── pipeline items ──────────────────────────────────────────────────────────────────────────
@dataclass
class _Chunk:
    """Consecutive frames of one video, tracked and cropped, waiting for the model."""

    job: int
    indices: np.ndarray
    timestamps: np.ndarray
    success: np.ndarray  # (n,) bool
    confidence: np.ndarray  # (n,) float32
    boxes: np.ndarray  # (n, 4) float32
    rows: np.ndarray  # (k,) rows of this chunk that have a crop
    crops: np.ndarray  # (k, S, S, 3) uint8
    affines: np.ndarray  # (k, 2, 3) frame → crop
    frames: np.ndarray | None = None  # (k, H, W, 3), kept only for self-tracking refinement
    intensities: np.ndarray | None = None  # (n, N) filled by the model
    taken: int = 0  # crops handed to the model so far
    scored: int = 0

    @property
    def done(self) -> bool:
        return self.scored >= len(self.rows)


@dataclass
class _VideoEnd:
    job: int
    error: str | None = None


@dataclass
class _WorkerDone:
    """A tracking worker (thread or process) has no more videos to take."""

    worker: int


@dataclass
class _TrackState:
    """Self-tracking: the latest landmarks the model predicted for a video (frame px)."""

    frame: int = -1
    landmarks: np.ndarray | None = None
    velocity: np.ndarray | None = None  # px per frame, from the last two scored frames
    next_search: int = 0  # after a failed search, the frame from which to search again
    last_seen: np.ndarray | None = None  # landmarks of the last frame with a face

    def may_search(self, frame: int) -> bool:
        return frame >= self.next_search

    def search_failed(self, frame: int, wait: int) -> None:
        """A full-frame search is costly: after one finds nothing, wait ``wait`` frames (as OpenFace does)."""
        self.next_search = frame + max(1, wait)

    def update(self, frame: int, landmarks: np.ndarray | None) -> None:
        if frame < self.frame:
            return
        if landmarks is not None and self.landmarks is not None and 0 < frame - self.frame <= 4:
            self.velocity = (landmarks - self.landmarks) / (frame - self.frame)
        elif landmarks is None or self.landmarks is None:
            self.velocity = None
        self.frame, self.landmarks = frame, landmarks
        if landmarks is not None:
            self.last_seen = landmarks

    def predict(self, frame: int) -> np.ndarray | None:
        """Landmarks expected at ``frame``: constant velocity from the latest, over the lag."""
        lms, v = self.landmarks, self.velocity
        if lms is None or v is None:
            return lms
        return lms + v.mean(0) * min(max(frame - self.frame, 0), 32)


def _box_of(landmarks: np.ndarray) -> np.ndarray:
    return np.concatenate([landmarks.min(-2), landmarks.max(-2)], -1).astype(np.float32)


def _cut(frame: np.ndarray, landmarks: np.ndarray, crop: CropConfig) -> tuple[np.ndarray, np.ndarray]:
    m = crop_affine(crop_square(landmarks, crop), crop.size)
    return crop_image(frame, m, crop.size), m


def track_and_crop(batch: FrameBatch, tracker, crop: CropConfig, job: int = 0) -> _Chunk:
    """Run the tracker on a batch of frames and cut the crops of the frames with a face."""
    track = tracker.update(batch)
    n = len(batch)
    success = np.asarray(track.success, bool) & np.isfinite(np.asarray(track.landmarks)).all(axis=(1, 2))
    rows = np.flatnonzero(success)
    crops = np.empty((len(rows), crop.size, crop.size, 3), np.uint8)
    affines = np.empty((len(rows), 2, 3), np.float64)
    for k, r in enumerate(rows):
        crops[k], affines[k] = _cut(batch.frames[r], np.asarray(track.landmarks[r]), crop)
    boxes = np.full((n, 4), np.nan, np.float32)
    if getattr(track, "boxes", None) is not None:
        boxes[:] = np.asarray(track.boxes, np.float32)
    boxes[~success] = np.nan
    confidence = np.asarray(track.confidence, np.float32).copy()
    return _Chunk(job, batch.indices, batch.timestamps, success, confidence, boxes, rows, crops, affines)


def _self_track_and_crop(batch: FrameBatch, state: _TrackState, detect, crop: CropConfig, job: int, wait: int = 10) -> _Chunk:
    """Crops from the model's latest landmarks for the video; detection where there are none."""
    n = len(batch)
    success = np.zeros(n, bool)
    confidence = np.zeros(n, np.float32)
    boxes = np.full((n, 4), np.nan, np.float32)
    rows, crops, affines = [], [], []
    for r in range(n):
        lms = state.predict(int(batch.indices[r]))
        if lms is None:
            frame = int(batch.indices[r])
            lms, conf = detect(batch, r, near=state.last_seen, search=state.may_search(frame))
            if lms is None:
                state.search_failed(frame, wait)
                continue
            state.update(int(batch.indices[r]), lms)
            confidence[r] = conf
        c, m = _cut(batch.frames[r], lms, crop)
        success[r] = True
        boxes[r] = _box_of(lms)
        rows.append(r)
        crops.append(c)
        affines.append(m)
    rows = np.asarray(rows, np.int64)
    chunk = _Chunk(
        job, batch.indices, batch.timestamps, success, confidence, boxes, rows,
        np.stack(crops) if crops else np.empty((0, crop.size, crop.size, 3), np.uint8),
        np.stack(affines) if affines else np.empty((0, 2, 3)),
    )
    chunk.frames = batch.frames[rows] if len(rows) else None
    return chunk


def _detector(backend):
    """detect(batch, r) -> (landmarks | None, confidence): a fresh search on one frame."""
    from auhm.face.tracking import choose_detection

    def detect(batch: FrameBatch, r: int, near: np.ndarray | None = None, search: bool = True):
        frame = batch.frames[r : r + 1]
        if near is not None:  # cheap first: fit where the face was last seen
            lms, conf = backend.fit(frame, np.asarray(near, np.float64)[None])
            if np.isfinite(lms[0]).all() and conf[0] >= getattr(backend, "min_confidence", 0.0):
                return np.asarray(lms[0], np.float64), float(conf[0])
        if not search:
            return None, 0.0
        chosen = choose_detection(backend.detect(frame)[0])
        if chosen is None:
            return None, 0.0
        lms, conf = backend.fit(frame, chosen[0][None])
        lms = np.asarray(lms[0], np.float64)
        if not np.isfinite(lms).all():
            return None, 0.0
        return lms, float(conf[0])

    return detect


# ── writing ─────────────────────────────────────────────────────────────────────────────────
class _AtomicParquetStream:
    """Row groups appended as they come to a temp file, renamed into place on commit."""

    def __init__(self, path: Path, schema: pa.Schema):
        self.path = path
        self.schema = schema
        path.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        self._writer = pq.ParquetWriter(self.tmp, schema)
        self._pending: list[pa.RecordBatch] = []
        self._rows = 0
        self.rows_written = 0

    def append(self, batch: pa.RecordBatch) -> None:
        self._pending.append(batch)
        self._rows += batch.num_rows
        if self._rows >= _ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(pa.Table.from_batches(self._pending, self.schema))
            self.rows_written += self._rows
            self._pending, self._rows = [], 0

    def commit(self) -> None:
        self._flush()
        self._writer.close()
        os.replace(self.tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _rows(video: str, chunk: _Chunk, schema: pa.Schema, aus: Sequence[int]) -> pa.RecordBatch:
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


def _count_frames(jobs: Sequence[VideoJob], bar, task, over: threading.Event) -> None:
    """Set the progress total to the frames the containers claim (a PyAV open each: ~40 ms here)."""
    total = 0
    for k, job in enumerate(jobs, 1):
        if over.is_set():
            return
        total += _claimed_frames(job.video)
        if k % 100 == 0 or k == len(jobs):
            bar.update(task, total=total or None)


def _claimed_frames(video: str) -> int:
    try:
        import av

        with av.open(video) as c:
            return int(c.streams.video[0].frames or 0)
    except Exception:
        return 0


# ── the local engine ────────────────────────────────────────────────────────────────────────
def run_jobs(
    jobs: Sequence[VideoJob],
    predictor: Predictor,
    source: FaceSource,
    meta: dict,
    config: AnnotateConfig,
    on_frames: Callable[[int], None] = lambda n: None,
    after_start: Callable[[], None] = lambda: None,
) -> tuple[list[str], list[InputFailure], int]:
    """Annotate ``jobs`` (workers for decode + tracking, this thread for the model).

    Returns (videos written, failures, rows written). ``after_start`` runs once the tracking
    workers are running: a thread started before a fork may hold a lock (an import's, say) that
    the forked child would then wait on forever.
    """
    if not jobs:
        return [], [], 0
    source.preload()  # before the fork: the tracking processes share it
    aus = predictor.aus
    crop = predictor.crop
    bs = config.batch_size or default_batch_size(predictor.device)
    chunk_frames = bs if source.self_tracking else max(bs, 8)
    # Tracking that needs neither torch nor the model runs in forked processes, each with its own
    # GIL; they share the backend face_source loaded before the fork.
    processes = source.forkable and not source.self_tracking and "fork" in multiprocessing.get_all_start_methods()
    n_workers = max(1, min(tracking_workers(config.workers, predictor.device, processes), len(jobs)))
    ctx = multiprocessing.get_context("fork") if processes else None
    # Self-tracking crops follow the model's latest landmarks: a short queue keeps that lag small.
    depth = n_workers if source.self_tracking else 4 * n_workers + 4
    items = ctx.Queue(maxsize=depth) if processes else queue.Queue(maxsize=depth)
    stop = ctx.Event() if processes else threading.Event()
    claimed = (ctx or multiprocessing).Value("i", 0)  # videos handed out so far (shared memory: threads or processes)
    parent = os.getpid()
    states = [_TrackState() for _ in jobs]

    def next_job() -> int | None:
        with claimed.get_lock():
            j, claimed.value = claimed.value, claimed.value + 1
        return j if j < len(jobs) else None

    def put(item) -> None:
        while not stop.is_set():
            try:
                items.put(item, timeout=0.2)
                return
            except queue.Full:
                if processes and os.getppid() != parent:  # the annotating process is gone (killed)
                    os._exit(1)

    def worker(k: int) -> None:
        try:
            if processes:
                return_large_buffers_to_the_os()
            tracker = source.tracker()
            detect = _detector(tracker.backend) if source.self_tracking else None
            while not stop.is_set():
                j = next_job()
                if j is None:
                    break
                video = jobs[j].video
                try:
                    # One decoding thread per video: the cores belong to the model lanes (decord's
                    # default started 4 threads per video on this 2-core machine).
                    reader = VideoReader(video, num_threads=1)
                    if not source.self_tracking:
                        tracker.start(video)
                    for batch in _prefetched(reader.batches(chunk_frames, config.every), stop):
                        if source.self_tracking:
                            put(_self_track_and_crop(batch, states[j], detect, crop, j, config.redetect_every))
                        else:
                            put(track_and_crop(batch, tracker, crop, j))
                    put(_VideoEnd(j))
                except Exception as e:  # one broken video must not stop the others
                    put(_VideoEnd(j, _reason(e, video)))
        except Exception as e:  # the tracker itself failed: report every video left
            while (j := next_job()) is not None:
                put(_VideoEnd(j, f"landmark backend failed: {_reason(e, '')}"))
        finally:
            put(_WorkerDone(k))
            if processes:
                items.close()
                items.join_thread()  # everything put is handed over before the process ends

    spawn = ctx.Process if processes else threading.Thread
    workers = [spawn(target=worker, args=(k,), name=f"auhm-track-{k}", daemon=True) for k in range(n_workers)]
    schema = prediction_schema(aus, {})
    writers: dict[int, _AtomicParquetStream] = {}
    pending: deque = deque()  # chunks and video ends, in arrival order
    queued_crops = 0
    written, failures, rows = [], [], 0

    def writer_for(j: int) -> _AtomicParquetStream:
        if j not in writers:
            writers[j] = _AtomicParquetStream(jobs[j].dest, prediction_schema(aus, {**meta, "video": jobs[j].video}))
        return writers[j]

    def score(limit: int) -> None:
        """Hand up to ``limit`` crops from the front of the pending chunks to the model (one batch)."""
        nonlocal queued_crops
        parts, taken = [], 0
        for item in pending:
            if taken >= limit:
                break
            if isinstance(item, _Chunk) and item.taken < len(item.rows):
                k = min(limit - taken, len(item.rows) - item.taken)
                parts.append((item, item.taken, k))
                item.taken += k
                taken += k
        if not taken:
            return
        queued_crops -= taken
        crops = np.concatenate([c.crops[s : s + k] for c, s, k in parts])
        if lanes.pool is None:
            return apply(parts, predictor(crops))
        if len(in_flight) >= lanes.count:  # every lane busy: wait for the first to finish
            collect(futures.wait(in_flight, return_when=futures.FIRST_COMPLETED).done)
        in_flight.add(lanes.pool.submit(lambda: (parts, predictor(crops))))

    def collect(finished: Iterable) -> None:
        """Apply the batches the model lanes have finished (in any order: drain keeps the rows' order)."""
        for f in list(finished):
            in_flight.discard(f)
            apply(*f.result())

    def apply(parts: list, pred: Prediction) -> None:
        at = 0
        for c, s, k in parts:
            if c.intensities is None:
                c.intensities = np.full((len(c.indices), len(aus)), np.nan, np.float32)
            sl = slice(at, at + k)
            c.intensities[c.rows[s : s + k]] = pred.intensities[sl]
            if source.self_tracking and pred.landmarks is not None:
                _follow(c, s, k, pred, sl, states[c.job], predictor, config, detect_in_model)
            c.scored += k
            at += k

    detect_in_model = _detector(source.backend()) if source.self_tracking else None

    def drain() -> None:
        """Write every finished item at the front, in order."""
        nonlocal rows
        while pending and (not isinstance(pending[0], _Chunk) or pending[0].done):
            item = pending.popleft()
            if isinstance(item, _Chunk):
                writer_for(item.job).append(_rows(jobs[item.job].video, item, schema, aus))
                item.crops = item.frames = None
                on_frames(len(item.indices))
                continue
            w = writers.pop(item.job, None)
            if item.error is not None:
                if w is not None:
                    w.abort()
                failures.append(InputFailure(jobs[item.job].video, item.error))
                continue
            if w is None:  # a video whose every row was written before (or that had none)
                w = writer_for(item.job)
                writers.pop(item.job)
            w.commit()
            rows += w.rows_written
            written.append(jobs[item.job].video)

    in_flight: set = set()  # futures of (parts, Prediction) from the model lanes
    lanes = _ModelLanes(1 if source.self_tracking else model_lanes(predictor.device))
    if processes:
        gc.freeze()  # a collection in a child would touch, and so copy, every page of this heap
    for w in workers:
        w.start()
    if processes:
        gc.unfreeze()
    after_start()
    try:
        with lanes:
            lanes.warm_up(predictor, bs)
            finished: set[int] = set()
            while len(finished) < n_workers:
                try:
                    item = items.get(timeout=1.0)
                except queue.Empty:
                    if processes:  # a process that died without saying so (a crash in native code)
                        finished.update(k for k, w in enumerate(workers) if not w.is_alive())
                    continue
                if isinstance(item, _WorkerDone):
                    finished.add(item.worker)
                    continue
                pending.append(item)
                if isinstance(item, _Chunk):
                    queued_crops += len(item.rows)
                while queued_crops >= bs:
                    score(bs)
                collect([f for f in in_flight if f.done()])
                drain()
            while queued_crops:
                score(bs)
            collect(list(in_flight))
            drain()
    finally:
        stop.set()
        for w in workers:
            w.join(timeout=5)
            if processes and w.is_alive():
                w.terminate()
        for stream in writers.values():
            stream.abort()
    ended = set(written) | {f.path for f in failures}
    failures += [InputFailure(job.video, "its tracking process died") for job in jobs if job.video not in ended]
    return written, failures, rows


def tracking_workers(workers: int | None, device: torch.device, processes: bool = True) -> int:
    """Decode + tracking workers (one video each): as given; else one on a CPU, whose cores run
    the model lanes, and beside a GPU one process per spare core (one dlib process tracks ~200
    frames/s here, a GPU scores thousands) or at most 4 threads (they share one GIL: on the H200,
    4 threads cropping true landmarks gave 1,747 frames/s, 8 gave 1,474)."""
    if workers is not None:
        return max(1, int(workers))
    if device.type == "cpu":
        return 1
    spare = max(1, min(16, (os.cpu_count() or 2) - 1))
    return spare if processes else min(4, spare)


def return_large_buffers_to_the_os(threshold: int = 128 * 1024) -> bool:
    """Have glibc map every allocation of ``threshold`` bytes or more on its own and unmap it when
    freed; for the tracking processes only. glibc's default raises that threshold to the largest
    block freed so far (up to 32 MB), so decoded frames and crops then come from the heap, whose
    freed space goes back to the OS only now and then: a tracking process's RSS swung between
    664 and 929 MB over 31 videos, and stayed within 613–664 MB with this. It costs the process
    ~0.8 CPU ms a frame (page faults on fresh buffers). Never in the model's process: torch's
    activations would fault on every forward (the bare model ran at 50 frames/s instead of 115–124
    with it). False where there is no glibc."""
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(-3, threshold))  # M_MMAP_THRESHOLD


def model_lanes(device: torch.device) -> int:
    """How many model batches run at once: one per torch thread on a CPU, one on a GPU.

    On CPUs, single-threaded forwards side by side beat one forward split over all cores, and
    they leave room for the tracking workers: two lanes ran the paper-size AU-Net (bf16, batch 8)
    at 132–137 frames/s on this project's 2-core Xeon against 93–141 for one two-thread forward,
    and a thread that shares the cores with a two-thread forward stalls it at every barrier.
    """
    return 1 if device.type == "cuda" else max(1, torch.get_num_threads())


class _ModelLanes:
    """A pool of ``count`` model threads, each forward single-threaded while it is open."""

    def __init__(self, count: int):
        self.count = count
        self.pool: ThreadPoolExecutor | None = None
        self._threads = 0

    def __enter__(self) -> "_ModelLanes":
        if self.count > 1:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(1)
            self.pool = ThreadPoolExecutor(self.count, thread_name_prefix="auhm-model")
        return self

    def warm_up(self, predictor: "Predictor", batch: int) -> None:
        """On a GPU, one forward at the run's batch size while the trackers load (the first one
        at a new size or precision picks its kernels). Not on a CPU: there a blank forward per
        lane took the cores from the tracking process's start-up (dlib ready ~0.15 s later, the
        472-frame clip ~5 % slower in ``bench/annotate.py``'s setting), and the first real batches
        pay only the kernel set-up (~0.06 s a lane)."""
        if predictor.device.type != "cpu":  # one lane on a GPU
            predictor(np.zeros((batch, predictor.input_size, predictor.input_size, 3), np.uint8))

    def __exit__(self, *exc) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            torch.set_num_threads(self._threads)
            self.pool = None


_REFINE_ROUNDS = 3


def _drifted(crop_landmarks: np.ndarray, frame_landmarks: np.ndarray, affine: np.ndarray, crop: CropConfig, drift: float) -> bool:
    """True when the face's own crop differs from the one it was cut with by more than ``drift``."""
    used = _square_of(affine, crop.size)
    now = crop_square(frame_landmarks, crop)
    edge = 0.03 * crop.size  # a face cut by the crop's edge looks smaller than it is
    at_edge = crop_landmarks.min() < edge or crop_landmarks.max() > crop.size - 1 - edge
    return bool(at_edge or np.abs(now - used).max() > drift * used[2])


def _follow(c: _Chunk, s: int, k: int, pred: Prediction, sl: slice, state: _TrackState, predictor: Predictor,
            config: AnnotateConfig, detect) -> None:
    """Self-tracking: update the video's landmarks from the model, re-cut frames that drifted."""
    conf = pred.landmark_confidence[sl] if pred.landmark_confidence is not None else np.ones(k, np.float32)
    lost_below = config.min_landmark_confidence
    if lost_below is None:
        lost_below = float(predictor.info.get("backbone_presence_threshold", 0.25))
    redo: list[tuple[int, int, np.ndarray]] = []  # (row, slot, landmarks in frame px to re-cut from)
    for q in range(k):
        slot = s + q
        r = int(c.rows[slot])
        crop_lms = pred.landmarks[sl][q].astype(np.float64)
        frame_lms = warp_points(crop_lms, invert_affine(c.affines[slot]))
        if conf[q] < lost_below:  # lost: search this frame afresh
            batch = FrameBatch(c.indices[r : r + 1], c.timestamps[r : r + 1], c.frames[slot : slot + 1])
            near = state.last_seen if state.last_seen is not None else frame_lms  # the last good face, not this miss
            frame_lms, _ = detect(batch, 0, near=near, search=state.may_search(int(c.indices[r])))
            if frame_lms is None:
                c.success[r] = False
                c.confidence[r] = 0.0
                state.update(int(c.indices[r]), None)
                state.search_failed(int(c.indices[r]), config.redetect_every)
                continue
            moved = True
        else:
            c.confidence[r] = float(conf[q])
            moved = _drifted(crop_lms, frame_lms, c.affines[slot], predictor.crop, config.refine_drift)
        state.update(int(c.indices[r]), frame_lms)
        c.boxes[r] = _box_of(frame_lms)
        if moved:
            redo.append((r, slot, frame_lms))
    for _ in range(_REFINE_ROUNDS):  # re-cut from the frame's own landmarks until the crop holds still
        if not redo:
            break
        cuts = [_cut(c.frames[slot], lms, predictor.crop) for _, slot, lms in redo]
        again = predictor(np.stack([img for img, _ in cuts]))
        still = []
        for q, ((r, slot, _), (_, m)) in enumerate(zip(redo, cuts)):
            c.intensities[r] = again.intensities[q]
            if again.landmarks is None:
                continue
            lms = warp_points(again.landmarks[q].astype(np.float64), invert_affine(m))
            c.boxes[r] = _box_of(lms)
            c.confidence[r] = float(again.landmark_confidence[q])
            state.update(int(c.indices[r]), lms)
            if _drifted(again.landmarks[q], lms, m, predictor.crop, config.refine_drift):
                still.append((r, slot, lms))
        redo = still


def _prefetched(batches: Iterator[FrameBatch], stop: threading.Event, depth: int = 2) -> Iterator[FrameBatch]:
    """Decode in a thread of its own, ``depth`` batches ahead of the tracking that consumes them."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    end, gone = object(), threading.Event()  # gone: the consumer stopped early

    def hand_over(item) -> bool:
        while not (stop.is_set() or gone.is_set()):
            try:
                q.put(item, timeout=0.2)
                return True
            except queue.Full:
                continue
        return False

    def decode() -> None:
        try:
            for b in batches:
                if not hand_over(b):
                    return
            hand_over(end)
        except BaseException as e:  # handed to the consumer, which reports the video
            hand_over(e)

    threading.Thread(target=decode, name="auhm-decode", daemon=True).start()
    try:
        while not stop.is_set():
            item = q.get()
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()


def _square_of(affine: np.ndarray, size: int) -> np.ndarray:
    """(cx, cy, side) in frame pixels of the square a frame → crop affine cuts."""
    scale = affine[0, 0]
    return np.array([(size / 2 - affine[0, 2]) / scale, (size / 2 - affine[1, 2]) / scale, size / scale])


def _reason(e: Exception, video: str) -> str:
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    prefix = f"{video}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


# ── entry point ─────────────────────────────────────────────────────────────────────────────
def expand_videos(patterns: Iterable[str]) -> list[str]:
    from auhm.face.extract import expand_inputs

    return [str(p) for p in expand_inputs(list(patterns))]


def annotate(videos: Sequence[str], config: AnnotateConfig) -> AnnotateResult:
    """Annotate videos (paths, globs or @list.txt) with per-frame AU intensities; see the module doc."""
    config.check()
    paths = expand_videos(videos)
    if not paths:
        raise UsageError("no videos matched the given paths")
    checkpoint = file_sha256(config.model)
    try:
        predictor = Predictor.from_checkpoint(config.model, config.device, config.precision)
    except ValueError as e:  # unreadable or foreign checkpoint
        raise UsageError(str(e)) from None
    source = face_source(config, predictor)
    if not config.quiet:
        console.print(
            f"annotate: {len(paths)} video(s), {predictor.method} on {predictor.device} ({predictor.precision}), "
            f"landmarks: {source.name}"
        )
    meta = {
        "checkpoint": checkpoint,
        "checkpoint_path": str(config.model),
        "aus": list(predictor.aus),
        "method": predictor.method,
        "landmark_backend": source.name,
        "every": config.every,
    }
    out = Path(config.out)
    folder = out if config.per_video else out.with_name(out.name + ".parts")
    jobs = [VideoJob(v, folder / n) for v, n in zip(paths, output_names(paths))]
    result = AnnotateResult(out, source.name)

    if not config.per_video and out.exists() and not config.overwrite and _whole_file_done(out, paths, meta):
        result.skipped = list(paths)
        return result
    todo = []
    for job in jobs:
        if not config.overwrite and is_done(job.dest, job.video, meta):
            result.skipped.append(job.video)
        else:
            todo.append(job)
    if result.skipped and not config.quiet:
        console.print(f"annotate: {len(result.skipped)} video(s) already done with this checkpoint, skipped")

    with progress(config.quiet) as bar:
        task = bar.add_task("annotate", total=None, unit="frames")
        advance = lambda n: bar.advance(task, n)  # noqa: E731

        counted = threading.Event()  # set when the work is over: the count stops there
        counter = threading.Thread(target=_count_frames, args=(todo, bar, task, counted), name="auhm-count", daemon=True)

        def count_frames() -> None:  # the total opens every container: counted beside the work, not before it
            if not config.quiet:
                counter.start()

        if config.engine == "ray":
            from auhm.infer.ray_engine import run_jobs_ray

            count_frames()
            written, failures, rows = run_jobs_ray(todo, config, meta, advance)
        else:
            written, failures, rows = run_jobs(todo, predictor, source, meta, config, advance, after_start=count_frames)
        counted.set()
        if counter.is_alive():
            counter.join()  # at most one more container open
        bar.update(task, total=bar.tasks[task].completed)  # the decoded frames, not what the containers claimed
    result.written, result.failures, result.frames = written, failures, rows

    if not config.per_video:
        done = set(result.skipped) | set(written)
        merge_parts([j for j in jobs if j.video in done], out, predictor.aus, meta)
        if not failures:
            shutil.rmtree(folder, ignore_errors=True)
    return result


def _whole_file_done(out: Path, paths: Sequence[str], meta: dict) -> bool:
    try:
        have = read_metadata(out)
        videos = set(pq.read_table(out, columns=["video"]).column("video").unique().to_pylist())
    except Exception:
        return False
    return all(have.get(k) == meta[k] for k in ("checkpoint", "every")) and set(paths) <= videos


def merge_parts(jobs: Sequence[VideoJob], out: Path, aus: Sequence[int], meta: dict) -> Path:
    """Concatenate the videos' part files, in input order, into ``out`` (atomically)."""
    writer = _AtomicParquetStream(out, prediction_schema(aus, meta))
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
