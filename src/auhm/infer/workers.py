"""Decode + tracking workers: one video at a time each, chunks of crops onto one bounded queue.

Tracking that needs neither torch nor the model (dlib, truth) runs in forked processes, each with
its own GIL; the others in threads of the model's process. Each worker decodes in a thread of its
own, a couple of batches ahead of its tracking.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import threading
import time
from typing import Iterator, Sequence

import torch

from auhm.errors import failure_reason
from auhm.face.linking import People
from auhm.infer.chunks import Note, VideoEnd, WorkerDone, track_and_crop
from auhm.video import FrameBatch, VideoError, VideoReader
from auhm.video.inputs import known_length


def tracking_workers(workers: int | None, device: torch.device, processes: bool = True, self_tracking: bool = False) -> int:
    """Decode + tracking workers (one video each): as given; else, when the AU model tracks
    (self-tracking: the model runs in these threads), one per core on a CPU and 4 beside a GPU;
    otherwise one on a CPU, whose cores run the model lanes, and beside a GPU one process per
    spare core (one tracking process keeps up with a small share of what a GPU scores) or at
    most 4 threads (they share one GIL: more threads went slower, bench/RESULTS.md)."""
    if workers is not None:
        return max(1, int(workers))
    if self_tracking:
        return max(1, torch.get_num_threads()) if device.type == "cpu" else 4
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


def prefetched(batches: Iterator[FrameBatch], stop, depth: int = 2) -> Iterator[FrameBatch]:
    """Decode in a thread of its own, ``depth`` batches ahead of the tracking that consumes them.
    Ends when the run stops (``stop``), when decoding ends, or when the decoder dies without a word."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    end, gone = object(), threading.Event()  # gone: the consumer stopped early

    def hand_over(item) -> bool:
        while not (stop.is_set() or gone.is_set()):
            try:
                q.put(item, timeout=0.05)
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

    decoder = threading.Thread(target=decode, name="auhm-decode", daemon=True)
    decoder.start()
    try:
        while not stop.is_set():
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                if not decoder.is_alive() and q.empty():
                    raise RuntimeError("the decoding thread ended without finishing the video")
                continue
            if item is end:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        gone.set()
        decoder.join(timeout=1.0)


DISTRUST_AFTER = 3  # faces the detector found and the model's landmarks rejected, before a video falls back


def distrusted(tracker) -> bool:
    """The AU model's landmarks rejected most of the faces the detector found in this video."""
    return tracker.rejected >= DISTRUST_AFTER and tracker.rejected * 2 > tracker.rejected + tracker.accepted


class TrackingWorkers:
    """``count`` workers taking videos in turn and putting their chunks, notes and ends on ``items``.

    Each worker's state is its own (a local of its loop): a tracker that fails ends its own video
    only. ``stop`` ends every worker within a fraction of a second.
    """

    def __init__(self, jobs: Sequence, source, crop, chunk_frames: int, config, count: int, processes: bool):
        self.jobs = jobs
        self.source = source
        self.crop = crop
        self.chunk_frames = chunk_frames
        self.config = config
        self.count = count
        self.processes = processes
        ctx = multiprocessing.get_context("fork") if processes else None
        depth = 4 * count + 4
        self.items = ctx.Queue(maxsize=depth) if processes else queue.Queue(maxsize=depth)
        self.stop = ctx.Event() if processes else threading.Event()
        self._claimed = (ctx or multiprocessing).Value("i", 0)  # videos handed out so far (shared memory: threads or processes)
        self._parent = os.getpid()
        spawn = ctx.Process if processes else threading.Thread
        self.workers = [spawn(target=self._run, args=(k,), name=f"auhm-track-{k}", daemon=True) for k in range(count)]

    def start(self) -> None:
        for w in self.workers:
            w.start()

    def dead(self) -> list[int]:
        """Workers that are gone without saying so (a crash in native code)."""
        return [k for k, w in enumerate(self.workers) if not w.is_alive()] if self.processes else []

    def close(self, timeout: float = 2.0) -> list[str]:
        """Stop every worker (all at once, not one after another); the names of any still running."""
        self.stop.set()
        deadline = time.monotonic() + timeout
        for w in self.workers:
            w.join(timeout=max(0.0, deadline - time.monotonic()))
        for w in self.workers:
            if self.processes and w.is_alive():
                w.terminate()
                w.join(timeout=1.0)
        return [w.name for w in self.workers if w.is_alive()]

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
        # One decoding thread per video: the cores belong to the model (decord's default starts
        # several threads per video, whatever the cores).
        reader = VideoReader(video, num_threads=1)
        return reader, prefetched(reader.batches(self.chunk_frames, self.config.every), self.stop)

    def _end(self, j: int, error: str | None = None, notes: dict | None = None, people: dict[int, int] | None = None) -> None:
        self._put(VideoEnd(j, error, notes, people))
        if self.processes:
            return_freed_memory_to_the_os()

    def _run(self, k: int) -> None:
        if self.processes:  # the annotating process stops its workers: Ctrl-C is its to handle, SIGTERM (terminate) ends at once
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
        try:
            try:
                tracker = self.source.tracker()
            except Exception as e:  # no tracker at all: every video left fails, said once each
                while (j := self._next_job()) is not None:
                    self._put(VideoEnd(j, f"landmark backend failed: {failure_reason(e)}"))
                return
            while not self.stop.is_set() and (j := self._next_job()) is not None:
                self._video(j, tracker)
        finally:
            self._put(WorkerDone(k))
            if self.processes:
                self._hand_over_all()

    def _hand_over_all(self) -> None:
        """Before a tracking process ends: wait until everything it put is in the pipe, unless the run
        stops meanwhile (the reader may then never read it, and a plain join would wait forever)."""
        self.items.close()
        flushing = threading.Thread(target=self.items.join_thread, daemon=True)
        flushing.start()
        while flushing.is_alive() and not self.stop.is_set():
            self._alive_parent()  # a killed annotating process reads nothing more: leave, not wait forever
            flushing.join(timeout=0.05)
        if flushing.is_alive():
            self.items.cancel_join_thread()

    def _video(self, j: int, tracker) -> None:
        """Track one video and hand over its chunks; a failure ends this video only."""
        video, frames, current, tried = self.jobs[j].video, 0, tracker, False
        try:
            reader, batches = self._open(video)
            tracker.start(video, known_length(video, reader.info.frames_claimed), reader.info.fps)
            for batch in batches:
                chunk = track_and_crop(batch, current, self.crop, j)
                if not tried and self.source.self_tracking and distrusted(tracker):
                    tried = True
                    current = self._fall_back(j, video, tracker, reader.info.fps) or tracker
                    if current is not tracker:
                        chunk = track_and_crop(batch, current, self.crop, j)
                self._put(chunk)
                frames += len(batch)
            if self.stop.is_set():
                return  # stopped mid-video: not written, the re-run does it
            notes, people = _tracking_notes(tracker, current)
            self._end(j, notes=_with_shortfall(notes, reader), people=people)
        except Exception as e:  # one broken video must not stop the others
            if isinstance(e, VideoError) and frames:  # decoding broke off: the frames before it are kept
                notes, people = _tracking_notes(tracker, current)
                self._end(j, notes={**notes, "incomplete": failure_reason(e, video)}, people=people)
            else:
                self._end(j, failure_reason(e, video))

    def _fall_back(self, j: int, video: str, tracker, fps: float | None):
        """The detector's own tracker for a video whose self-tracking the model's landmarks cannot be trusted on."""
        what = f"the model's landmarks rejected {tracker.rejected} of {tracker.rejected + tracker.accepted} faces the detector found"
        fallback = self.source.fallback_tracker()
        if fallback is None:
            self._put(Note(j, f"{what}; no landmark tracker to fall back on (install dlib's predictor, or give --landmark-model): "
                              "frames where they are weak have no face"))
            return None
        self._put(Note(j, f"{what}; tracking this video with {fallback.backend.name} instead"))
        fallback.start(video, None, fps)  # its first frames are this chunk's: no short-video rule to apply
        return fallback


def _tracking_notes(tracker, current) -> tuple[dict, People | None]:
    """What a video's notes say of its faces (the most one detection found, the tracks written and
    how many were joined into an earlier person's id, faces rejected), and who each row written is,
    or None where no id changes."""
    notes: dict = {}
    if tracker.detections or current.detections:
        notes["faces_seen"] = int(max(tracker.faces_seen, current.faces_seen))
    people = current.people() if hasattr(current, "people") else None
    made = getattr(current, "tracks_made", None)
    if made is not None:
        notes["tracks"] = len(set(people.ids.values())) if people and people.ids else int(made)
        if people and len(set(people.ids.values())) < len(people.ids):
            notes["tracks_joined"] = len(people.ids) - len(set(people.ids.values()))
    if tracker.rejected:
        notes["faces_rejected"] = int(tracker.rejected)
    return notes, people if people is not None and people.renames else None


def _with_shortfall(notes: dict, reader: VideoReader) -> dict:
    """A video's notes, with its shortfall of frames when it decoded clearly fewer than claimed."""
    missing = reader.shortfall()
    return {**notes, "incomplete": missing} if missing else notes
