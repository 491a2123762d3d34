"""Batch building: threads between steps on a CPU give the DataLoader's batches, item for item."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from auhm.train.augment import AugmentConfig, ShardView
from auhm.train.batches import ThreadedBatches, batch_loader, resolve_workers
from auhm.train.loop import EpochBatches
from test_augment import _FakeShards


def _equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_threaded_batches_equal_the_dataloaders_for_split_and_plain_datasets():
    view = ShardView(_FakeShards(n=20, size=48), np.arange(20), 32, AugmentConfig(), seed=3, negative_fraction=0.3)
    sampler = EpochBatches(len(view), 6, seed=1)
    sampler.set_epoch(2)
    reference = list(DataLoader(view, batch_sampler=sampler, num_workers=0))
    for threads in (1, 3):
        got = list(ThreadedBatches(view, sampler, threads))
        assert len(got) == len(reference) == 3
        for a, b in zip(got, reference):
            _equal(a, b)

    class Plain(torch.utils.data.Dataset):  # no load/view: whole items in the threads
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"x": torch.full((2,), float(i))}

    got = list(ThreadedBatches(Plain(), [[3, 1], [0, 9, 4]], 2))
    assert [b["x"][:, 0].tolist() for b in got] == [[3.0, 1.0], [0.0, 9.0, 4.0]]


def test_batch_loader_picks_threads_on_a_cpu_and_processes_when_asked():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(None, cpu) == 0 and resolve_workers(3, cpu) == 3 and resolve_workers(0, gpu) == 0
    assert 2 <= resolve_workers(None, gpu) <= 12
    view = ShardView(_FakeShards(n=20, size=48), np.arange(7), 32)
    loader = batch_loader(view, cpu, None, batch_size=3)
    assert isinstance(loader, ThreadedBatches)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [3, 3, 1] and torch.cat([b["index"] for b in batches]).tolist() == list(range(7))
    assert isinstance(batch_loader(view, cpu, 1, batch_size=3), DataLoader)
