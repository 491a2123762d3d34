"""Batches for training and evaluation: worker processes beside a GPU, threads between steps on a CPU.

With the model on a GPU the CPU cores are free, so DataLoader worker processes decode and augment
ahead of it. With the model on the CPU its forward and backward already use every core, and a
worker that runs at the same time stalls the model's parallel regions (its other threads wait at
each barrier while the worker holds a core). ``python bench/train.py --presets small --methods
adaptation scratch --precisions bf16 --batch-sizes 16 --steps 20 --workers W`` on the project's
2-core Xeon kept 74 % / 81 % (adaptation) of the model-only speed with 1 / 2 workers and 87 % with
the batch built in the main process between steps. So on a CPU each batch is built between
steps, by one thread per core (OpenCV and the JPEG decoder release the GIL).

Worker processes are forked with OpenCV set to one thread. Calling ``cv2.setNumThreads`` in a
forked child whose parent had used OpenCV's thread pool waits forever (reproduced here with
OpenCV 4.14; ``tests/test_batches.py`` runs the fork after such use): it must never run in a
worker, so the setting is made in this process around the fork and inherited.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Iterable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate


class ThreadedBatches:
    """Collated batches of ``dataset[key]`` for each list of keys, built when asked for (nothing
    runs while the caller trains on the previous batch).

    Datasets with ``load(key)`` and ``view(loaded)`` (ShardView) have the loads (JPEG decoding
    and the warp, which free the GIL) spread over ``threads`` threads and the views (colour
    jitter: small numpy steps that hold it) made in this thread: handing the GIL back and forth
    between threads at every small step made two threads no faster than one.
    """

    def __init__(self, dataset, batch_sampler: Iterable[Sequence], threads: int):
        self.dataset = dataset
        self.batch_sampler = batch_sampler
        self.threads = max(1, threads)

    def __len__(self) -> int:
        return len(self.batch_sampler)

    def __iter__(self):
        split = hasattr(self.dataset, "load") and hasattr(self.dataset, "view")
        fetch = self.dataset.load if split else self.dataset.__getitem__
        # OpenCV's own thread pool on small crops only adds hand-offs to the threads here.
        with single_threaded_opencv(), ThreadPoolExecutor(max(1, self.threads - 1), thread_name_prefix="auhm-batch") as pool:
            for keys in self.batch_sampler:
                # one contiguous share per thread, this one included: a hand-off per share, not per item
                shares = np.array_split(np.arange(len(keys)), self.threads)
                futures = [pool.submit(lambda rows: [fetch(keys[r]) for r in rows], rows) for rows in shares[1:]]
                fetched = [fetch(keys[r]) for r in shares[0]] + [x for f in futures for x in f.result()]
                yield collate([self.dataset.view(x) for x in fetched] if split else fetched)


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

    ``workers`` None picks per device (:func:`resolve_workers`); 0 builds batches in this
    process with one thread per torch thread.
    """
    if batch_sampler is None:
        n = len(dataset)
        batch_sampler = [list(range(i, min(i + batch_size, n))) for i in range(0, n, batch_size)]
    workers = resolve_workers(workers, device, world)
    if workers == 0:
        return ThreadedBatches(dataset, batch_sampler, torch.get_num_threads())
    # A worker that stops answering (a deadlock in native code) becomes an error, not a run that waits forever.
    return WorkerBatches(dataset, batch_sampler=batch_sampler, num_workers=workers, pin_memory=device.type == "cuda",
                         persistent_workers=True, generator=torch.Generator().manual_seed(seed), timeout=WORKER_TIMEOUT_S)
