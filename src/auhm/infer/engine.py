"""The local engine: tracking workers feed the model, which runs on the calling thread, and rows
are written in order as each chunk is scored.

Crops from consecutive frames *and* from different videos share model batches, so short clips
still fill them. On a CPU the model runs as one single-threaded forward per core side by side
(:class:`~auhm.infer.predictor.ModelLanes`); batches then finish in any order, and
:meth:`Engine._drain` keeps the rows in arrival order.
"""

from __future__ import annotations

import gc
import multiprocessing
import queue
from collections import deque
from concurrent import futures
from typing import Callable, Iterable, Sequence

import numpy as np

from auhm.errors import InputFailure
from auhm.infer.chunks import Chunk, WorkerDone
from auhm.infer.output import AtomicParquetStream, VideoJob, chunk_rows
from auhm.infer.predictor import ModelLanes, Prediction, Predictor, default_batch_size, model_lanes
from auhm.infer.self_tracking import TrackState, detector, follow
from auhm.infer.sources import FaceSource
from auhm.infer.workers import TrackingWorkers, tracking_workers
from auhm.io import prediction_schema


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
        self.writers: dict[int, AtomicParquetStream] = {}
        self.pending: deque = deque()  # chunks and video ends, in arrival order
        self.queued_crops = 0
        self.in_flight: set = set()  # futures of (parts, Prediction) from the model lanes
        self.written: list[str] = []
        self.failures: list[InputFailure] = []
        self.rows = 0
        self.states = [TrackState() for _ in jobs]
        self.lanes = ModelLanes(1 if source.self_tracking else model_lanes(predictor.device))
        self.detect = None  # self-tracking: the model thread's own detector, for frames it finds lost

    def run(self, after_start: Callable[[], None] = lambda: None) -> tuple[list[str], list[InputFailure], int]:
        """Annotate every job; returns (videos written, failures, rows written)."""
        if not self.jobs:
            return [], [], 0
        source, predictor = self.source, self.predictor
        source.preload()  # before the fork: the tracking processes share it
        chunk_frames = self.batch if source.self_tracking else max(self.batch, 8)
        # Tracking that needs neither torch nor the model runs in forked processes, each with its own
        # GIL; they share the backend face_source loaded before the fork.
        processes = source.forkable and not source.self_tracking and "fork" in multiprocessing.get_all_start_methods()
        count = max(1, min(tracking_workers(self.config.workers, predictor.device, processes), len(self.jobs)))
        workers = TrackingWorkers(self.jobs, source, predictor.crop, chunk_frames, self.config.every, self.config.redetect_every,
                                  count, processes, self.states)
        if source.self_tracking:
            self.detect = detector(source.backend())
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
        ended = set(self.written) | {f.path for f in self.failures}
        self.failures += [InputFailure(job.video, "its tracking process died") for job in self.jobs if job.video not in ended]
        return self.written, self.failures, self.rows

    def _feed(self, workers: TrackingWorkers) -> None:
        """Take the workers' items until every worker is done, scoring full batches as they fill."""
        finished: set[int] = set()
        while len(finished) < workers.count:
            try:
                item = workers.items.get(timeout=1.0)
            except queue.Empty:
                finished.update(workers.dead())
                continue
            if isinstance(item, WorkerDone):
                finished.add(item.worker)
                continue
            self.pending.append(item)
            if isinstance(item, Chunk):
                self.queued_crops += len(item.rows)
            while self.queued_crops >= self.batch:
                self._score(self.batch)
            self._collect([f for f in self.in_flight if f.done()])
            self._drain()
        while self.queued_crops:
            self._score(self.batch)
        self._collect(list(self.in_flight))
        self._drain()

    def _score(self, limit: int) -> None:
        """Hand up to ``limit`` crops from the front of the pending chunks to the model (one batch)."""
        parts, taken = [], 0
        for item in self.pending:
            if taken >= limit:
                break
            if isinstance(item, Chunk) and item.taken < len(item.rows):
                k = min(limit - taken, len(item.rows) - item.taken)
                parts.append((item, item.taken, k))
                item.taken += k
                taken += k
        if not taken:
            return
        self.queued_crops -= taken
        crops = np.concatenate([c.crops[s : s + k] for c, s, k in parts])
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
        at = 0
        for c, s, k in parts:
            if c.intensities is None:
                c.intensities = np.full((len(c.indices), len(self.aus)), np.nan, np.float32)
            sl = slice(at, at + k)
            c.intensities[c.rows[s : s + k]] = pred.intensities[sl]
            if self.source.self_tracking and pred.landmarks is not None:
                follow(c, s, k, pred, sl, self.states[c.job], self.predictor, self.config, self.detect)
            c.scored += k
            at += k

    def _writer(self, j: int) -> AtomicParquetStream:
        if j not in self.writers:
            meta = {**self.meta, "video": self.jobs[j].video}
            self.writers[j] = AtomicParquetStream(self.jobs[j].dest, prediction_schema(self.aus, meta))
        return self.writers[j]

    def _drain(self) -> None:
        """Write every finished item at the front, in order."""
        while self.pending and (not isinstance(self.pending[0], Chunk) or self.pending[0].done):
            item = self.pending.popleft()
            video = self.jobs[item.job].video
            if isinstance(item, Chunk):
                self._writer(item.job).append(chunk_rows(video, item, self.schema, self.aus))
                item.crops = item.frames = None
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
            w.commit(item.notes)
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
    """Annotate ``jobs`` (workers for decode + tracking, this thread for the model).

    Returns (videos written, failures, rows written). ``after_start`` runs once the tracking
    workers are running: a thread started before a fork may hold a lock (an import's, say) that
    the forked child would then wait on forever.
    """
    return Engine(jobs, predictor, source, meta, config, on_frames).run(after_start)
