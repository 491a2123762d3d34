"""Batches for training and evaluation: worker processes beside a GPU, helper processes between steps on a CPU.

With the model on a GPU the CPU cores are free, so DataLoader worker processes decode and augment
ahead of it. With the model on the CPU its forward and backward already use every core, and a
worker that runs at the same time stalls the model's parallel regions (its other threads wait at
each barrier while the worker holds a core; even at idle scheduling priority, since the step
leaves no idle cycles to fill: ``bench/train.py --workers W``, figures in bench/RESULTS.md). So
on a CPU each batch is built between steps, a share by each core: this process and forked
helper processes. Helpers rather than threads because half of an item's work (the random draws,
the affine, colour jitter) holds the GIL.

Processes are forked with OpenCV set to one thread. Calling ``cv2.setNumThreads`` in a forked
child whose parent had used OpenCV's thread pool waits forever (``tests/test_batches.py`` runs
the fork after such use): it must never run in a worker, so the
setting is made in this process around the fork and inherited.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import signal
from contextlib import contextmanager
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate


class ForkedBatches:
    """Collated batches of ``dataset[key]`` for each list of keys, built when asked for (nothing
    runs while the caller trains on the previous batch) by ``processes`` processes at once: this
    one and forked helpers, each building one contiguous share of the keys.

    Helpers are forked when iteration starts (they see the dataset as it is then) and end with
    it, an abandoned iteration included. An item that fails in a helper raises here, with the
    helper's traceback as a note.
    """

    def __init__(self, dataset, batch_sampler: Iterable[Sequence], processes: int):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        forkable = "fork" in multiprocessing.get_all_start_methods()  # not on Windows: this process alone
        self.processes = max(1, min(MAX_BATCH_PROCESSES, processes)) if forkable else 1

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        helpers: list[_Helper] = []
        try:
            with single_threaded_opencv():  # helpers inherit one thread; small crops gain nothing from more
                helpers = [_Helper(self.dataset) for _ in range(self.processes - 1)]
                for keys in self.batch_sampler:
                    keys = list(keys)
                    shares = np.array_split(np.arange(len(keys)), self.processes)
                    asked = [(h, [keys[r] for r in rows]) for h, rows in zip(helpers, shares[1:]) if len(rows)]
                    for helper, share in asked:
                        helper.ask(share)
                    items = [self.dataset[keys[r]] for r in shares[0]]
                    for helper, _ in asked:
                        items += helper.answer()
                    yield collate(items)
        finally:
            for helper in helpers:
                helper.close()


MAX_BATCH_PROCESSES = 16


class _Helper:
    """A forked process that builds the items of the keys it is sent, one share at a time."""

    def __init__(self, dataset):
        ctx = multiprocessing.get_context("fork")
        keys_reader, self.keys = ctx.Pipe(duplex=False)  # (receiving end, sending end)
        self.items, items_writer = ctx.Pipe(duplex=False)
        self.process = ctx.Process(target=_serve_items, args=(dataset, keys_reader, items_writer, os.getpid()), name="auhm-batch", daemon=True)
        self.process.start()
        keys_reader.close()
        items_writer.close()

    def ask(self, keys: list) -> None:
        self.keys.send_bytes(pickle.dumps(keys, protocol=pickle.HIGHEST_PROTOCOL))

    def answer(self) -> list:
        try:
            ok, payload = pickle.loads(self.items.recv_bytes())
        except EOFError:  # only the helper held the other end: it is gone
            self.process.join(timeout=1)
            raise RuntimeError(f"a batch helper process ended (exit code {self.process.exitcode}; killed for memory?)") from None
        if ok:
            return payload
        error, trace = payload
        if hasattr(error, "add_note"):  # Python ≥ 3.11
            error.add_note(f"in a batch helper process:\n{trace}")
        raise error

    def close(self) -> None:
        try:
            self.keys.send_bytes(pickle.dumps(None))
        except OSError:
            pass
        self.process.join(timeout=5)
        if self.process.is_alive():
            self.process.kill()
            self.process.join()
        self.keys.close()
        self.items.close()


def _serve_items(dataset, keys, items, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it ends this process
    while True:
        while not keys.poll(1.0):
            if os.getppid() != parent:  # the parent was killed
                return
        try:
            asked = pickle.loads(keys.recv_bytes())
        except EOFError:
            return
        if asked is None:
            return
        try:
            reply = (True, [dataset[k] for k in asked])
        except Exception as e:  # noqa: BLE001 - handed to the parent, which raises it
            import traceback

            reply = (False, (e, traceback.format_exc()))
        try:
            data = pickle.dumps(reply, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:  # noqa: BLE001 - an error that cannot be pickled goes as text
            data = pickle.dumps((False, (RuntimeError(repr(reply[1][0])), reply[1][1])))
        items.send_bytes(data)


class WorkerBatches(DataLoader):
    """A DataLoader whose worker processes start with OpenCV single-threaded (see the module doc):
    a process per core already, and no OpenCV call in a worker that could wait on its parent's pool."""

    def __iter__(self):
        with single_threaded_opencv():  # persistent workers are forked here, on the first call
            return super().__iter__()


@contextmanager
def single_threaded_opencv():
    """OpenCV on one thread inside the block, as it was after it (call it only in the process that owns the pool)."""
    threads = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(threads)


def collate(items: Sequence) -> dict:
    """default_collate for dicts of numpy arrays and Python scalars, in one np.stack per key
    (a third of default_collate's time on 16 crops: it makes a tensor of each item first)."""
    if not isinstance(items[0], dict) or not all(isinstance(v, (np.ndarray, bool, int, float)) for v in items[0].values()):
        return default_collate(items)
    return {k: torch.from_numpy(np.stack([it[k] for it in items]) if isinstance(items[0][k], np.ndarray) else np.asarray([it[k] for it in items]))
            for k in items[0]}


WORKER_TIMEOUT_S = 600  # no batch from the workers for this long: raise instead of waiting


def resolve_workers(workers: int | None, device: torch.device, world: int = 1) -> int:
    """Worker processes: as given, else none on a CPU and most of this process's cores beside a GPU."""
    if workers is not None:
        return max(0, int(workers))
    if device.type == "cpu":
        return 0
    return max(2, min(12, (os.cpu_count() or 4) // max(1, world) - 1))


def batch_loader(dataset, device: torch.device, workers: int | None, *, batch_sampler: Iterable[Sequence] | None = None,
                 batch_size: int | None = None, seed: int = 0, world: int = 1):
    """Batches of ``dataset`` in ``batch_sampler`` order (or in order, ``batch_size`` at a time).

    ``workers`` None picks per device (:func:`resolve_workers`); 0 builds each batch when asked,
    in one process per torch thread (:class:`ForkedBatches`).
    """
    if batch_sampler is None:
        n = len(dataset)
        batch_sampler = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    workers = resolve_workers(workers, device, world)
    if workers == 0:
        return ForkedBatches(dataset, batch_sampler, torch.get_num_threads())
    # A worker that stops answering (a deadlock in native code) becomes an error, not a run that waits forever.
    return WorkerBatches(dataset, batch_sampler=batch_sampler, num_workers=workers, pin_memory=device.type == "cuda",
                         persistent_workers=True, generator=torch.Generator().manual_seed(seed), timeout=WORKER_TIMEOUT_S)
