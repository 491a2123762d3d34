"""The local engine: tracking workers feed the model, which runs beside the calling thread, and
rows are written in order as each chunk is scored and settled.

Crops from consecutive frames *and* from different videos share model batches, so short clips
still fill them. The model runs in :class:`~auhm.infer.predictor.ModelLanes` (a CPU: one
single-threaded forward per core side by side; a GPU: one forward at a time while this thread
gathers the next batch); batches then finish in any order, and :meth:`Engine._drain` keeps the
rows in arrival order. With self-tracking, each scored crop's landmarks go back to the worker
that cut it, which answers with crops cut again (:class:`~auhm.infer.self_tracking.Recut`) and,
at last, the chunk's faces (:class:`~auhm.infer.self_tracking.Settled`). This thread does no
per-frame work: it gathers crops, hands them over, and writes rows, a chunk at a time.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
import time
from collections import deque
from concurrent import futures
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import numpy as np

from auhm.errors import InputFailure
from auhm.infer.chunks import Chunk, VideoEnd, WorkerDone
from auhm.infer.output import VideoJob, chunk_rows
from auhm.infer.predictor import ModelLanes, Prediction, Predictor, default_batch_size, model_lanes
from auhm.infer.self_tracking import Note, Recut, Scored, Settled
from auhm.infer.sources import FaceSource, presence_threshold
from auhm.infer.workers import TrackingWorkers, tracking_workers
from auhm.io import ParquetStream, prediction_schema

GATHER_S = 0.01  # how long to wait for more crops before scoring a batch that is not full


@dataclass
class _Crops:
    """Crops of some rows of a chunk, waiting for the model."""

    chunk: Chunk
    rows: np.ndarray
    crops: np.ndarray
    generation: np.ndarray
    taken: int = 0


class StageClock:
    """Seconds the model's thread spends in each stage of its loop (``bench/annotate.py`` prints them)."""

    def __init__(self):
        self.seconds: dict[str, float] = {}
        self._stage, self._since = None, time.perf_counter()

    def __call__(self, stage: str) -> None:
        now = time.perf_counter()
        if self._stage is not None:
            self.seconds[self._stage] = self.seconds.get(self._stage, 0.0) + now - self._since
        self._stage, self._since = stage, now


class Engine:
    """One run over ``jobs``: the state the model's thread keeps between batches."""

    def __init__(self, jobs: Sequence[VideoJob], predictor: Predictor, source: FaceSource, meta: dict, config,
                 on_frames: Callable[[int], None] = lambda n: None):
        self.jobs = jobs
        self.predictor = predictor
        self.source = source
        self.meta = meta
        self.config = config
        self.on_frames = on_frames
        self.aus = predictor.aus
        self.batch = config.batch_size or default_batch_size(predictor.device)
        self.schema = prediction_schema(self.aus, {})
        self.writers: dict[int, ParquetStream] = {}
        self.pending: deque = deque()  # chunks and video ends, in arrival order: the order rows are written in
        self.to_score: deque[_Crops] = deque()
        self.queued_crops = 0
        self.open: dict[tuple[int, int], Chunk] = {}  # self-tracking: chunks not settled yet, by (job, seq)
        self.in_flight: set = set()  # futures of (parts, Prediction) from the model lanes
        self.written: list[str] = []
        self.failures: list[InputFailure] = []
        self.fallbacks: list[InputFailure] = []  # self-tracked videos that went on with another tracker, and why
        self.rows = 0
        self.lanes = ModelLanes(model_lanes(predictor.device), asynchronous=predictor.device.type != "cpu")
        self.clock = StageClock()
        self.feedback: list = []

    def run(self, after_start: Callable[[], None] = lambda: None) -> tuple[list[str], list[InputFailure], int]:
        """Annotate every job; returns (videos written, failures, rows written)."""
        if not self.jobs:
            return [], [], 0
        source, predictor = self.source, self.predictor
        source.preload()  # before the fork: the tracking processes share it
        # Self-tracking cuts crops ahead of the model's answers: short chunks keep that lag small.
        # (Other chunks are long: the per-chunk costs of tracking and of the queue are then small.)
        chunk_frames = max(8, min(self.batch, 32)) if source.self_tracking else max(self.batch, 32)
        # Tracking that needs neither torch nor the model runs in forked processes, each with its own
        # GIL; they share the backend face_source loaded before the fork.
        processes = source.forkable and "fork" in multiprocessing.get_all_start_methods()
        count = max(1, min(tracking_workers(self.config.workers, predictor.device, processes), len(self.jobs)))
        threshold = presence_threshold(self.config, predictor) if source.self_tracking else 0.0
        workers = TrackingWorkers(self.jobs, source, predictor.crop, chunk_frames, self.config, count, processes, threshold)
        self.feedback = workers.feedback
        if processes:
            gc.freeze()  # a collection in a child would touch, and so copy, every page of this heap
        workers.start()
        if processes:
            gc.unfreeze()
        after_start()
        try:
            with self.lanes:
                self.lanes.warm_up(predictor, self.batch)
                self._feed(workers)
        finally:
            workers.close()
            for stream in self.writers.values():
                stream.abort()
        self.clock("")
        ended = set(self.written) | {f.path for f in self.failures}
        self.failures += [InputFailure(job.video, "its tracking process died") for job in self.jobs if job.video not in ended]
        return self.written, self.failures, self.rows

    def _feed(self, workers: TrackingWorkers) -> None:
        """Take the workers' items until every worker is done; score full batches as they fill, and
        what there is when nothing more comes (self-tracking workers wait for the model's answers)."""
        finished: set[int] = set()
        clock = self.clock
        while len(finished) < workers.count or self.to_score or self.in_flight:
            clock("receive")  # waiting for the workers, and unpickling what they send
            wait = 0.002 if self.in_flight else GATHER_S if self.queued_crops else 1.0
            try:
                item = workers.items.get(timeout=wait) if len(finished) < workers.count else None
            except queue.Empty:
                item = None
            if item is None and len(finished) == workers.count and self.in_flight:
                futures.wait(self.in_flight, return_when=futures.FIRST_COMPLETED)
            clock("take")
            if isinstance(item, WorkerDone):
                finished.add(item.worker)
            elif item is not None:
                self._take(item)
            elif not self.queued_crops and not self.in_flight:
                finished.update(workers.dead())
            while self.queued_crops >= self.batch or (item is None and self.queued_crops and not self.in_flight):
                self._score(self.batch)
            self._collect([f for f in self.in_flight if f.done()])
            self._drain()
        self._drain()

    def _take(self, item) -> None:
        if isinstance(item, Chunk):
            self.pending.append(item)
            if not item.settled:
                self.open[item.job, item.seq] = item
            self._queue(item, item.rows, item.crops)
        elif isinstance(item, Recut):
            chunk = self.open[item.job, item.seq]
            chunk.generation[item.rows] += 1
            self._queue(chunk, item.rows, item.crops)
        elif isinstance(item, Settled):
            chunk = self.open.pop((item.job, item.seq))
            chunk.success, chunk.confidence, chunk.boxes = item.success, item.confidence, item.boxes
            chunk.settled = True
        elif isinstance(item, Note):
            self.fallbacks.append(InputFailure(self.jobs[item.job].video, item.text))
        elif isinstance(item, VideoEnd):
            if item.error is not None:  # its rows are dropped: chunks still open need no answers
                for key in [k for k in self.open if k[0] == item.job]:
                    self.open.pop(key).settled = True
            self.pending.append(item)

    def _queue(self, chunk: Chunk, rows: np.ndarray, crops: np.ndarray) -> None:
        if chunk.generation is None:
            chunk.generation = np.zeros(len(chunk.indices), np.int64)
        if len(rows):
            self.to_score.append(_Crops(chunk, rows, crops, chunk.generation[rows].copy()))
            chunk.unscored += len(rows)
            self.queued_crops += len(rows)

    def _score(self, limit: int) -> None:
        """Hand up to ``limit`` crops from the front of the queue to the model (one batch)."""
        self.clock("batch")
        parts, taken = [], 0
        while self.to_score and taken < limit:
            unit = self.to_score[0]
            k = min(limit - taken, len(unit.rows) - unit.taken)
            parts.append((unit, unit.taken, k))
            unit.taken += k
            taken += k
            if unit.taken == len(unit.rows):
                self.to_score.popleft()
        if not taken:
            return
        self.queued_crops -= taken
        crops = self.lanes.gather([u.crops[s : s + k] for u, s, k in parts], taken, self.predictor)
        self.clock("model")
        predictor = self.predictor
        if self.lanes.pool is None:
            return self._apply(parts, predictor(crops))
        if len(self.in_flight) >= self.lanes.count:  # every lane busy: wait for the first to finish
            self._collect(futures.wait(self.in_flight, return_when=futures.FIRST_COMPLETED).done)
        self.in_flight.add(self.lanes.pool.submit(lambda: (parts, predictor(crops))))

    def _collect(self, finished: Iterable) -> None:
        """Apply the batches the model lanes have finished (in any order: drain keeps the rows' order)."""
        for f in list(finished):
            self.in_flight.discard(f)
            self._apply(*f.result())

    def _apply(self, parts: list, pred: Prediction) -> None:
        self.clock("apply")
        at = 0
        for unit, s, k in parts:
            c = unit.chunk
            if c.intensities is None:
                c.intensities = np.full((len(c.indices), len(self.aus)), np.nan, np.float32)
            rows = unit.rows[s : s + k]
            fresh = c.generation[rows] == unit.generation[s : s + k]  # a row cut again since: this score is stale
            sl = slice(at, at + k)
            c.intensities[rows[fresh]] = pred.intensities[sl][fresh]
            if not c.settled and pred.landmarks is not None and fresh.any():
                self.feedback[c.worker].put(Scored(c.job, c.seq, rows[fresh], pred.landmarks[sl][fresh], pred.landmark_confidence[sl][fresh]))
            c.unscored -= k
            at += k

    def _writer(self, j: int) -> ParquetStream:
        if j not in self.writers:
            meta = {**self.meta, "video": self.jobs[j].video}
            self.writers[j] = ParquetStream(self.jobs[j].dest, prediction_schema(self.aus, meta))
        return self.writers[j]

    def _drain(self) -> None:
        """Write every finished item at the front, in order."""
        self.clock("write")
        while self.pending and (not isinstance(self.pending[0], Chunk) or self.pending[0].done):
            item = self.pending.popleft()
            video = self.jobs[item.job].video
            if isinstance(item, Chunk):
                self._writer(item.job).append(chunk_rows(video, item, self.schema, self.aus))
                item.crops = None
                self.on_frames(len(item.indices))
                continue
            w = self.writers.pop(item.job, None)
            if item.error is not None:
                if w is not None:
                    w.abort()
                self.failures.append(InputFailure(video, item.error))
                continue
            if w is None:  # a video whose every row was written before (or that had none)
                w = self._writer(item.job)
                self.writers.pop(item.job)
            w.commit({"notes": item.notes} if item.notes else None)
            self.rows += w.rows_written
            self.written.append(video)


def run_jobs(
    jobs: Sequence[VideoJob],
    predictor: Predictor,
    source: FaceSource,
    meta: dict,
    config,
    on_frames: Callable[[int], None] = lambda n: None,
    after_start: Callable[[], None] = lambda: None,
) -> tuple[list[str], list[InputFailure], int]:
    """Annotate ``jobs`` (workers for decode + tracking, model lanes for the model).

    Returns (videos written, failures, rows written). ``after_start`` runs once the tracking
    workers are running: a thread started before a fork may hold a lock (an import's, say) that
    the forked child would then wait on forever.
    """
    return Engine(jobs, predictor, source, meta, config, on_frames).run(after_start)
