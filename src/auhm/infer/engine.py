"""The local engine: tracking workers feed the model, which runs beside the calling thread, and
rows are written in order as each chunk is scored.

The model scores each chunk's crops in pieces of the batch size cut from the chunk's start, so
which crops share a forward is a function of the video alone (a forward's numbers may depend on
its batch), never of what else is in flight. The model runs in
:class:`~auhm.infer.predictor.ModelLanes` (a CPU: one single-threaded forward per core side by
side; a GPU: one forward at a time while this thread gathers the next batch); batches then finish
in any order, and :meth:`Engine._drain` keeps the rows in arrival order. Chunks the tracker
scored already (the AU model's own backbone tracked them) go straight to the writer.
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
import torch

from auhm.errors import InputFailure
from auhm.infer.chunks import Chunk, Note, VideoEnd, WorkerDone
from auhm.infer.output import VideoJob, chunk_rows
from auhm.infer.predictor import ModelLanes, Prediction, Predictor, default_batch_size, model_lanes
from auhm.infer.sources import FaceSource
from auhm.infer.workers import TrackingWorkers, tracking_workers
from auhm.io import ParquetStream, prediction_schema, with_people


@dataclass
class _Crops:
    """A chunk's crops, waiting for the model."""

    chunk: Chunk
    taken: int = 0


@dataclass
class FaceGaps:
    """A video's frames without a face, counted as its rows are written (in frame order)."""

    frames: int = 0
    without: int = 0
    run: int = 0
    longest: int = 0

    def add(self, has_face: np.ndarray) -> None:
        """The next rows' has-a-face flags; a run without a face may span several calls."""
        has_face = np.asarray(has_face, bool)
        faces = np.flatnonzero(has_face)
        if len(faces):
            inner = int((np.diff(faces) - 1).max()) if len(faces) > 1 else 0
            self.longest = max(self.longest, self.run + int(faces[0]), inner)
            self.run = len(has_face) - 1 - int(faces[-1])
        else:
            self.run += len(has_face)
        self.longest = max(self.longest, self.run)
        self.frames += len(has_face)
        self.without += int((~has_face).sum())

    def notes(self) -> dict:
        return {"frames": self.frames, "frames_without_face": self.without, "longest_gap": self.longest}


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
        self.gaps: dict[int, FaceGaps] = {}
        self.pending: deque = deque()  # chunks and video ends, in arrival order: the order rows are written in
        self.to_score: deque[_Crops] = deque()
        self.in_flight: set = set()  # futures of (parts, Prediction) from the model lanes
        self.written: list[str] = []
        self.failures: list[InputFailure] = []
        self.fallbacks: list[InputFailure] = []  # self-tracked videos that went on with another tracker, and why
        self.rows = 0
        # Self-tracking: the tracking threads run the model; here only a fallen-back video's crops are scored.
        self.lanes = ModelLanes(1 if source.self_tracking else model_lanes(predictor.device), asynchronous=predictor.device.type != "cpu")
        self.clock = StageClock()

    def run(self, after_start: Callable[[], None] = lambda: None) -> tuple[list[str], list[InputFailure], int]:
        """Annotate every job; returns (videos written, failures, rows written)."""
        if not self.jobs:
            return [], [], 0
        source, predictor = self.source, self.predictor
        source.preload()  # before the fork: the tracking processes share it
        chunk_frames = max(self.batch, 32)
        # Tracking that needs neither torch nor the model runs in forked processes, each with its own
        # GIL; they share the backend face_source loaded before the fork.
        processes = source.forkable and "fork" in multiprocessing.get_all_start_methods()
        count = max(1, min(tracking_workers(self.config.workers, predictor.device, processes, source.self_tracking), len(self.jobs)))
        workers = TrackingWorkers(self.jobs, source, predictor.crop, chunk_frames, self.config, count, processes)
        if processes:
            gc.freeze()  # a collection in a child would touch, and so copy, every page of this heap
        workers.start()
        if processes:
            gc.unfreeze()
        after_start()
        threads = torch.get_num_threads()
        if source.self_tracking and predictor.device.type == "cpu":
            torch.set_num_threads(max(1, threads // count))  # the cores shared by the tracking threads' forwards
        try:
            with self.lanes:
                self.lanes.warm_up(predictor, self.batch)
                self._feed(workers)
        finally:
            torch.set_num_threads(threads)
            workers.close()
            for stream in self.writers.values():
                stream.abort()
        self.clock("")
        ended = set(self.written) | {f.path for f in self.failures}
        self.failures += [InputFailure(job.video, "its tracking process died") for job in self.jobs if job.video not in ended]
        return self.written, self.failures, self.rows

    def _feed(self, workers: TrackingWorkers) -> None:
        """Take the workers' items until every worker is done; score each chunk's crops as they come."""
        finished: set[int] = set()
        clock = self.clock
        while len(finished) < workers.count or self.to_score or self.in_flight:
            clock("receive")  # waiting for the workers, and unpickling what they send
            wait = 0.002 if (self.in_flight or self.to_score) else 0.2
            try:
                item = workers.items.get(timeout=wait) if len(finished) < workers.count else None
            except queue.Empty:
                item = None
            if item is None and len(finished) == workers.count and self.in_flight and not self.to_score:
                futures.wait(self.in_flight, return_when=futures.FIRST_COMPLETED)
            clock("take")
            if isinstance(item, WorkerDone):
                finished.add(item.worker)
            elif item is not None:
                self._take(item)
            elif not self.to_score and not self.in_flight:
                finished.update(workers.dead())
            while self.to_score and (self.lanes.pool is None or len(self.in_flight) < self.lanes.count):
                self._score()
            self._collect([f for f in self.in_flight if f.done()])
            self._drain()
        self._drain()

    def _take(self, item) -> None:
        if isinstance(item, Chunk):
            self.pending.append(item)
            if item.crops is not None and len(item.rows):
                item.unscored = len(item.rows)
                self.to_score.append(_Crops(item))
        elif isinstance(item, Note):
            self.fallbacks.append(InputFailure(self.jobs[item.job].video, item.text))
        elif isinstance(item, VideoEnd):
            self.pending.append(item)

    def _score(self) -> None:
        """Hand the model the next piece of the front chunk's crops (one batch, from one chunk only)."""
        self.clock("batch")
        unit = self.to_score[0]
        s = unit.taken
        k = min(self.batch, len(unit.chunk.rows) - s)
        unit.taken += k
        if unit.taken == len(unit.chunk.rows):
            self.to_score.popleft()
        crops = self.lanes.gather([unit.chunk.crops[s : s + k]], k, self.predictor)
        self.clock("model")
        predictor, part = self.predictor, (unit.chunk, s, k)
        if self.lanes.pool is None:
            return self._apply(part, predictor(crops))
        self.in_flight.add(self.lanes.pool.submit(lambda: (part, predictor(crops))))

    def _collect(self, finished: Iterable) -> None:
        """Apply the batches the model lanes have finished (in any order: drain keeps the rows' order)."""
        for f in list(finished):
            self.in_flight.discard(f)
            self._apply(*f.result())

    def _apply(self, part: tuple, pred: Prediction) -> None:
        self.clock("apply")
        chunk, s, k = part
        if chunk.intensities is None:
            chunk.intensities = np.full((len(chunk.rows), len(self.aus)), np.nan, np.float32)
        chunk.intensities[s : s + k] = pred.intensities
        chunk.unscored -= k

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
                self.gaps.setdefault(item.job, FaceGaps()).add(item.frames_with_face())
                item.crops = None
                self.on_frames(len(item.indices))
                continue
            w = self.writers.pop(item.job, None)
            gaps = self.gaps.pop(item.job, FaceGaps())
            if item.error is not None:
                if w is not None:
                    w.abort()
                self.failures.append(InputFailure(video, item.error))
                continue
            if w is None:  # a video whose every row was written before (or that had none)
                w = self._writer(item.job)
                self.writers.pop(item.job)
            people = item.people
            w.commit({"notes": {**(item.notes or {}), **gaps.notes()}}, rewrite=None if people is None else lambda t: with_people(t, people.ids, people.moved))
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
