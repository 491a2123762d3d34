"""Batch building: processes between steps on a CPU give the DataLoader's batches, item for item."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from auhm.train.augment import AugmentConfig, ShardView
from auhm.train.batches import ForkedBatches, batch_loader, resolve_workers
from auhm.train.sampling import EpochBatches

from helpers import FailsOn, FakeShards, still_running


def _equal(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_forked_batches_equal_the_dataloaders_for_augmented_and_plain_datasets():
    view = ShardView(FakeShards(n=20, size=48), np.arange(20), 32, AugmentConfig(), seed=3, negative_fraction=0.3)
    sampler = EpochBatches(len(view), 6, seed=1)
    sampler.set_epoch(2)
    reference = list(DataLoader(view, batch_sampler=sampler, num_workers=0))
    for processes in (1, 2, 4):
        got = list(ForkedBatches(view, sampler, processes))
        assert len(got) == len(reference) == 3
        for a, b in zip(got, reference):
            _equal(a, b)

    class Plain(torch.utils.data.Dataset):  # items of tensors, and batches smaller than the processes
        def __len__(self):
            return 10

        def __getitem__(self, i):
            return {"x": torch.full((2,), float(i))}

    got = list(ForkedBatches(Plain(), [[3, 1], [0, 9, 4]], 3))
    assert [b["x"][:, 0].tolist() for b in got] == [[3.0, 1.0], [0.0, 9.0, 4.0]]


def test_batch_loader_builds_between_steps_on_a_cpu_and_uses_workers_when_asked():
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert resolve_workers(None, cpu) == 0 and resolve_workers(3, cpu) == 3 and resolve_workers(0, gpu) == 0
    assert 2 <= resolve_workers(None, gpu) <= 12
    view = ShardView(FakeShards(n=20, size=48), np.arange(7), 32)
    loader = batch_loader(view, cpu, None, batch_size=3)
    assert isinstance(loader, ForkedBatches)
    batches = list(loader)
    assert [len(b["index"]) for b in batches] == [3, 3, 1] and torch.cat([b["index"] for b in batches]).tolist() == list(range(7))
    assert isinstance(batch_loader(view, cpu, 1, batch_size=3), DataLoader)


class BuiltBy(torch.utils.data.Dataset):
    """Items that say which process built them."""

    def __len__(self):
        return 8

    def __getitem__(self, i):
        return {"i": i, "pid": os.getpid()}


def test_on_a_cpu_with_two_threads_the_loader_builds_half_of_each_batch_in_a_forked_helper(torch_threads):
    torch_threads(2)
    loader = batch_loader(BuiltBy(), torch.device("cpu"), None, batch_size=4)
    assert isinstance(loader, ForkedBatches) and loader.processes == 2
    batches = list(loader)
    assert [b["i"].tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7]]
    for b in batches:
        here, helper = b["pid"].tolist()[:2], b["pid"].tolist()[2:]
        assert here == [os.getpid()] * 2 and len(set(helper)) == 1 and helper[0] != os.getpid()


def test_an_item_that_fails_in_a_helper_raises_its_own_error_and_no_helper_outlives_the_batches():
    import multiprocessing

    before = set(multiprocessing.active_children())
    with pytest.raises(ValueError, match=r"corrupt JPEG in shard \(item 7\)") as caught:
        list(ForkedBatches(FailsOn(7), [[0, 1, 2, 3], [4, 5, 6, 7]], 2))  # item 7: the helper's share
    if sys.version_info >= (3, 11):  # exception notes
        assert any("in a batch helper process" in note for note in caught.value.__notes__)
    it = iter(ForkedBatches(FailsOn(-1), [[0, 1], [2, 3], [4, 5]], 3))
    assert next(it)["i"].tolist() == [0, 1]
    it.close()  # abandoned after one batch
    assert set(multiprocessing.active_children()) == before


def test_a_helper_that_is_killed_becomes_an_error_not_a_wait():
    import signal

    class KillsItsProcess(FailsOn):
        def __getitem__(self, i):
            if i == 3:
                os.kill(os.getpid(), signal.SIGKILL)  # in the helper: the OOM killer's way out
            return {"i": i}

    with pytest.raises(RuntimeError, match="batch helper process ended"):
        list(ForkedBatches(KillsItsProcess(0), [[0, 1, 2, 3]], 2))


_PARENT_KILLED = """
import os, sys
sys.path.insert(0, {tests!r})
from helpers import FailsOn
from auhm.train.batches import ForkedBatches

it = iter(ForkedBatches(FailsOn(-1), [[0, 1], [2, 3]], 2))
next(it)
import multiprocessing
with open({pids!r}, "w") as f:
    f.write(" ".join(str(p.pid) for p in multiprocessing.active_children()))
os.kill(os.getpid(), 9)  # no clean-up: the helper is on its own
"""


@pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="reads process states from /proc")
def test_a_helper_whose_parent_is_killed_exits(tmp_path):
    import subprocess
    from pathlib import Path

    script = tmp_path / "parent_killed.py"
    pids = tmp_path / "helpers.txt"
    script.write_text(_PARENT_KILLED.format(tests=str(Path(__file__).parent), pids=str(pids)))
    # no pipes: a helper left running would hold them open
    subprocess.run([sys.executable, str(script)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60)
    helpers = [int(p) for p in pids.read_text().split()]
    assert len(helpers) == 1
    assert not still_running(helpers), "the batch helper outlived its killed parent"


_FORK_AFTER_OPENCV_POOL = """
import json, sys
import cv2, numpy as np, torch
from auhm.train.batches import batch_loader
from auhm.train.sampling import EpochBatches

big = np.zeros((1500, 1500, 3), np.uint8)
for _ in range(3):
    cv2.resize(big, (1200, 1200))  # this process's OpenCV thread pool is now running
before = cv2.getNumThreads()

class Probe(torch.utils.data.Dataset):
    def __len__(self):
        return 8

    def __getitem__(self, key):  # (position, epoch), as EpochBatches gives them
        cv2.resize(np.zeros((600, 600, 3), np.uint8), (500, 500))
        return {"index": key[0], "opencv_threads": cv2.getNumThreads()}

sampler = EpochBatches(8, 4, seed=0)
loader = batch_loader(Probe(), torch.device("cpu"), 2, batch_sampler=sampler)
seen, threads = [], []
for epoch in range(3):  # persistent workers across epoch boundaries
    sampler.set_epoch(epoch)
    for batch in loader:
        seen += batch["index"].tolist()
        threads += batch["opencv_threads"].tolist()
from auhm.train.batches import ForkedBatches

forked_seen = []
for epoch in range(2):  # helper processes between steps (a CPU's loader): forked anew each epoch
    sampler.set_epoch(epoch)
    for batch in ForkedBatches(Probe(), sampler, 3):
        forked_seen += batch["index"].tolist()
        threads += batch["opencv_threads"].tolist()
print(json.dumps({"seen": sorted(seen), "forked_seen": sorted(forked_seen), "threads": sorted(set(threads)), "before": before, "after": cv2.getNumThreads()}))
"""


def test_worker_processes_fork_after_opencvs_pool_ran_and_cross_epochs(tmp_path):
    """Beside a GPU, batches come from persistent worker processes, on a CPU from helpers forked
    each epoch. Forked after this process used OpenCV's thread pool, they must not hang (a
    cv2.setNumThreads call in a worker does: seen on a GPU run) and must run OpenCV on one thread;
    this process's setting comes back afterwards."""
    import json
    import subprocess
    import sys

    script = tmp_path / "fork_probe.py"
    script.write_text(_FORK_AFTER_OPENCV_POOL)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["seen"] == sorted(list(range(8)) * 3)
    assert got["forked_seen"] == sorted(list(range(8)) * 2)
    assert got["threads"] == [1]
    assert got["after"] == got["before"]
