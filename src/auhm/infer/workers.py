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

from auhm.infer.chunks import VideoEnd, WorkerDone, track_and_crop
from auhm.infer.self_tracking import detector, self_track_and_crop
from auhm.video import FrameBatch, VideoError, VideoReader


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


def reason(e: Exception, video: str) -> str:
    """The first line of an error, without a leading ``video: `` (the report names the video)."""
    msg = str(e).splitlines()[0] if str(e) else type(e).__name__
    prefix = f"{video}: "
    return msg[len(prefix):] if msg.startswith(prefix) else msg


class TrackingWorkers:
    """``count`` workers taking videos in turn and putting their chunks and ends on ``items``."""

    def __init__(self, jobs: Sequence, source, crop, chunk_frames: int, every: int, redetect_every: int,
                 count: int, processes: bool, states: Sequence | None = None):
        self.jobs = jobs
        self.source = source
        self.crop = crop
        self.chunk_frames = chunk_frames
        self.every = every
        self.redetect_every = redetect_every
        self.count = count
        self.processes = processes
        self.states = states  # self-tracking: each video's TrackState, shared with the model's thread
        ctx = multiprocessing.get_context("fork") if processes else None
        # Self-tracking crops follow the model's latest landmarks: a short queue keeps that lag small.
        depth = count if source.self_tracking else 4 * count + 4
        self.items = ctx.Queue(maxsize=depth) if processes else queue.Queue(maxsize=depth)
        self.stop = ctx.Event() if processes else threading.Event()
        self._claimed = (ctx or multiprocessing).Value("i", 0)  # videos handed out so far (shared memory: threads or processes)
        self._parent = os.getpid()
        spawn = ctx.Process if processes else threading.Thread
        self.workers = [spawn(target=self._work, args=(k,), name=f"auhm-track-{k}", daemon=True) for k in range(count)]

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

    def _put(self, item) -> None:
        while not self.stop.is_set():
            try:
                self.items.put(item, timeout=0.2)
                return
            except queue.Full:
                if self.processes and os.getppid() != self._parent:  # the annotating process is gone (killed)
                    os._exit(1)

    def _work(self, k: int) -> None:
        source = self.source
        try:
            if self.processes:
                return_large_buffers_to_the_os()
            tracker = source.tracker()
            detect = detector(tracker.backend) if source.self_tracking else None
            while not self.stop.is_set():
                j = self._next_job()
                if j is None:
                    break
                video = self.jobs[j].video
                frames = 0
                try:
                    # One decoding thread per video: the cores belong to the model lanes (decord's
                    # default started 4 threads per video on this 2-core machine).
                    reader = VideoReader(video, num_threads=1)
                    if not source.self_tracking:
                        tracker.start(video)
                    searches = tracker.detections
                    for batch in prefetched(reader.batches(self.chunk_frames, self.every), self.stop):
                        if source.self_tracking:
                            self._put(self_track_and_crop(batch, self.states[j], detect, self.crop, j, self.redetect_every))
                        else:
                            self._put(track_and_crop(batch, tracker, self.crop, j))
                        frames += len(batch)
                    notes = {"faces_seen": tracker.faces_seen} if tracker.detections > searches else {}
                    if missing := reader.shortfall():
                        notes["incomplete"] = missing
                    self._put(VideoEnd(j, notes=notes))
                except VideoError as e:  # decoding broke off: the frames before it are real, and kept
                    self._put(VideoEnd(j, notes={"incomplete": reason(e, video)}) if frames else VideoEnd(j, reason(e, video)))
                except Exception as e:  # one broken video must not stop the others
                    self._put(VideoEnd(j, reason(e, video)))
        except Exception as e:  # the tracker itself failed: report every video left
            while (j := self._next_job()) is not None:
                self._put(VideoEnd(j, f"landmark backend failed: {reason(e, '')}"))
        finally:
            self._put(WorkerDone(k))
            if self.processes:
                self.items.close()
                self.items.join_thread()  # everything put is handed over before the process ends
