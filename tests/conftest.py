"""Shared fixtures: real media from $AUHM_MEDIA or ../shared/media (skipped when absent), a small generated video,
a stand-in checkpoint file, torch's thread count set for a test or a module, and per test the global
generators seeded and the thread count checked. Helpers are in ``helpers.py``."""

from __future__ import annotations

import os
import random
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("OMP_NUM_THREADS", "2")

import torch  # noqa: E402 (after OMP_NUM_THREADS: torch reads it when its thread pool starts)

from helpers import media_dir, write_test_video  # noqa: E402


@pytest.fixture(scope="session")
def media() -> Path:
    """The real test videos ($AUHM_MEDIA, else ../shared/media beside the repository); tests using
    it skip when the folder is absent."""
    folder = media_dir()
    if not (folder / "single_face.mp4").exists():
        pytest.skip(f"no real test media in {folder} (set AUHM_MEDIA to their folder)")
    return folder


@pytest.fixture
def small_video(tmp_path: Path) -> Path:
    return write_test_video(tmp_path / "clip.avi")


@pytest.fixture
def checkpoint(tmp_path: Path) -> Path:
    """A checkpoint file for tests that replace ``Predictor.from_checkpoint`` with a stand-in model
    (its bytes still key the output's resume metadata)."""
    p = tmp_path / "standin.pt"
    p.write_bytes(b"stand-in checkpoint: the weights come from StandInAU")
    return p


@contextmanager
def _thread_count_restored():
    before = torch.get_num_threads()
    try:
        yield torch.set_num_threads
    finally:
        torch.set_num_threads(before)


@pytest.fixture
def torch_threads():
    """``torch_threads(n)`` sets torch's CPU thread count for this test, whatever the machine
    (the 2-lane and forked-helper paths need two); the count it had comes back afterwards."""
    with _thread_count_restored() as set_threads:
        yield set_threads


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module of training or model runs (``pytestmark =
    pytest.mark.usefixtures("one_torch_thread")``): a two-thread step stalls at every barrier
    while another process holds a core, so these tests would take many times longer on a busy
    machine. Their tests of the multi-thread paths ask for ``torch_threads``."""
    with _thread_count_restored() as set_threads:
        set_threads(1)
        yield


@pytest.fixture(autouse=True)
def threads_unchanged():
    """A test (or the code it runs) that leaves torch's thread count changed fails: every other
    test would run with it."""
    before = torch.get_num_threads()
    yield
    assert torch.get_num_threads() == before, f"torch's thread count left at {torch.get_num_threads()} (was {before})"


@pytest.fixture(autouse=True)
def seeded_generators():
    """The global generators (torch, NumPy, random) seeded before each test: what a test draws
    from them does not depend on which tests ran before it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)


@pytest.fixture
def standin(monkeypatch):
    """The stand-in AU model (helpers.StandInAU) loaded for any checkpoint path."""
    from auhm.infer.predictor import Predictor

    from helpers import INFO, StandInAU

    monkeypatch.setattr(Predictor, "from_checkpoint", classmethod(lambda cls, path, device="auto", precision="auto": cls(StandInAU(), INFO, "cpu", precision)))
