"""Decode + tracking workers: one video at a time each, chunks of crops onto one bounded queue.

Tracking that needs neither torch nor the model (dlib, truth) runs in forked processes, each with
its own GIL; the others in threads of the model's process. Each worker decodes in a thread of its
own, a couple of batches ahead of its tracking.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from typing import Iterator, Sequence

import torch

from auhm.errors import failure_reason
from auhm.infer.chunks import Chunk, VideoEnd, WorkerDone, track_and_crop
from auhm.infer.self_tracking import SelfTracker
from auhm.video import FrameBatch, VideoError, VideoReader


def tracking_workers(workers: int | None, device: torch.device, processes: bool = True) -> int:
    """Decode + tracking workers (one video each): as given; else one on a CPU, whose cores run
    the model lanes, and beside a GPU one process per spare core (one tracking process keeps up
    with a small share of what a GPU scores) or at most 4 threads (they share one GIL: more
    threads went slower, bench/RESULTS.md)."""
    if workers is not None:
        return max(1, int(workers))
    if device.type == "cpu":
        return 1
    spare = max(1, min(16, (os.cpu_count() or 2) - 1))
    return spare if processes else min(4, spare)


def return_freed_memory_to_the_os() -> bool:
    """Give the heap's free pages back to the OS (glibc's ``malloc_trim``); a tracking process
    does it after each video, so its RSS stays flat over a long corpus. (Once glibc has raised its
    mmap threshold, frames and crops come from the heap, which gives freed space back only now
    and then; fixing the threshold low instead page-faults every fresh buffer, a cost per frame:
    see bench/RESULTS.md.) False where there is no glibc."""
    import ctypes

    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return False
    return bool(trim(0))


def prefetched(batches: Iterator[FrameBatch], stop: threading.Event, depth: int = 2) -> Iterator[FrameBatch]:
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


class TrackingWorkers:
    """``count`` workers taking videos in turn and putting their chunks and ends on ``items``.

    Self-tracking workers also read what the model's thread sends back to each of them on
    ``feedback[k]`` (:class:`~auhm.infer.self_tracking.Scored`), and keep at most ``ahead`` chunks
    waiting for it: the lag between the landmarks a crop is cut from and its frame.
    """

    def __init__(self, jobs: Sequence, source, crop, chunk_frames: int, config, count: int, processes: bool,
                 threshold: float = 0.0, ahead: int = 2):
        self.jobs = jobs
        self.source = source
        self.crop = crop
        self.chunk_frames = chunk_frames
        self.config = config
        self.count = count
        self.processes = processes
        self.threshold = threshold
        self.ahead = ahead
        ctx = multiprocessing.get_context("fork") if processes else None
        depth = 4 * count + 4
        self.items = ctx.Queue(maxsize=depth) if processes else queue.Queue(maxsize=depth)
        self.feedback = [(ctx.Queue() if processes else queue.Queue()) for _ in range(count)] if source.self_tracking else []
        self.stop = ctx.Event() if processes else threading.Event()
        self._claimed = (ctx or multiprocessing).Value("i", 0)  # videos handed out so far (shared memory: threads or processes)
        self._parent = os.getpid()
        spawn = ctx.Process if processes else threading.Thread
        target = self._self_track if source.self_tracking else self._track
        self.workers = [spawn(target=self._run, args=(target, k), name=f"auhm-track-{k}", daemon=True) for k in range(count)]

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def dead(self) -> list[int]:
        """Workers that are gone without saying so (a crash in native code)."""
        return [k for k, w in enumerate(self.workers) if not w.is_alive()] if self.processes else []

    def close(self) -> None:
        self.stop.set()
        for w in self.workers:
            w.join(timeout=5)
            if self.processes and w.is_alive():
                w.terminate()

    def _next_job(self) -> int | None:
        with self._claimed.get_lock():
            j, self._claimed.value = self._claimed.value, self._claimed.value + 1
        return j if j < len(self.jobs) else None

    def _alive_parent(self) -> None:
        if self.processes and os.getppid() != self._parent:  # the annotating process is gone (killed)
            os._exit(1)

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                self._alive_parent()

    def _open(self, video: str) -> tuple[VideoReader, Iterator[FrameBatch]]:
        # One decoding thread per video: the cores belong to the model lanes (decord's default
        # starts several threads per video, whatever the cores).
        reader = VideoReader(video, num_threads=1)
        return reader, prefetched(reader.batches(self.chunk_frames, self.config.every), self.stop)

    def _broke_off(self, j: int, e: Exception, frames: int) -> None:
        """A video that failed: decoding that broke off keeps the frames before it (noted as
        incomplete); anything else drops the video."""
        video = self.jobs[j].video
        if isinstance(e, VideoError) and frames:
            self._end(j, notes={"incomplete": failure_reason(e, video)})
        else:
            self._end(j, failure_reason(e, video))

    def _run(self, target, k: int) -> None:
        self._doing: set[int] = set()  # videos this worker has started and not ended
        try:
            target(k)
        except Exception as e:  # the tracker itself failed: report every video left
            for j in sorted(self._doing):
                self._end(j, f"landmark backend failed: {failure_reason(e)}")
            while (j := self._next_job()) is not None:
                self._put(VideoEnd(j, f"landmark backend failed: {failure_reason(e)}"))
        finally:
            self._put(WorkerDone(k))
            if self.processes:
                self.items.close()
                self.items.join_thread()  # everything put is handed over before the process ends

    def _begin(self) -> int | None:
        j = self._next_job()
        if j is not None:
            self._doing.add(j)
        return j

    def _end(self, j: int, error: str | None = None, notes: dict | None = None) -> None:
        self._doing.discard(j)
        self._put(VideoEnd(j, error, notes))
        if self.processes:
            return_freed_memory_to_the_os()

    def _track(self, k: int) -> None:
        tracker = self.source.tracker()
        while not self.stop.is_set() and (j := self._begin()) is not None:
            video, frames = self.jobs[j].video, 0
            try:
                reader, batches = self._open(video)
                tracker.start(video)
                searches = tracker.detections
                for batch in batches:
                    self._put(track_and_crop(batch, tracker, self.crop, j))
                    frames += len(batch)
                notes = {"faces_seen": tracker.faces_seen} if tracker.detections > searches else {}
                self._end(j, notes=_with_shortfall(notes, reader))
            except Exception as e:  # one broken video must not stop the others
                self._broke_off(j, e, frames)

    def _self_track(self, k: int) -> None:
        cfg, feedback = self.config, self.feedback[k]

        def put(item) -> None:
            if isinstance(item, Chunk):
                item.worker = k
            self._put(item)

        tracker = SelfTracker(self.source.make_detector(), self.crop, self.threshold, put, cfg.refine_drift,
                              cfg.redetect_every, cfg.every, self.source.fallback)
        seq, job, reader, batches, frames = 0, None, None, None, 0

        def answer(block: bool) -> None:
            while True:
                try:
                    msg = feedback.get(timeout=0.2) if block else feedback.get_nowait()
                except queue.Empty:
                    self._alive_parent()
                    return
                tracker.scored(msg)
                block = False

        while not self.stop.is_set():
            answer(block=False)
            if job is None:
                job = self._begin()
                if job is None:
                    if not tracker.open_chunks:
                        return
                    answer(block=True)
                    continue
                video, frames = self.jobs[job].video, 0
                try:
                    reader, batches = self._open(video)
                    tracker.start(job, video)
                except Exception as e:
                    self._end(job, failure_reason(e, video))
                    job = None
                continue
            if tracker.open_chunks >= self.ahead:
                answer(block=True)
                continue
            try:
                batch = next(batches, None)
                if batch is not None:
                    put(tracker.cut(job, seq, batch))
                    seq += 1
                    frames += len(batch)
                    continue
                self._end(job, notes=_with_shortfall(tracker.notes(job), reader))
            except Exception as e:  # one broken video must not stop the others
                if not (isinstance(e, VideoError) and frames):
                    tracker.abandon(job)
                self._broke_off(job, e, frames)
            job = None


def _with_shortfall(notes: dict, reader: VideoReader) -> dict:
    """A video's notes, with its shortfall of frames when it decoded clearly fewer than claimed."""
    missing = reader.shortfall()
    return {**notes, "incomplete": missing} if missing else notes
