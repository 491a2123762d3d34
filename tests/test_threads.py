"""The training thread tuner: it keeps the thread count that steps faster, from step times alone."""

from __future__ import annotations

import torch

from auhm.train.threads import ThreadTuner


def run(tuner: ThreadTuner, seconds_at, steps: int) -> list[int]:
    """Feed ``steps`` step times, each ``seconds_at(step, threads in force)``; the thread count of every step."""
    used, threads = [], [tuner.current]
    tuner.set_threads = threads.append
    for step in range(steps):
        count = threads[-1]
        used.append(count)
        tuner.observe(seconds_at(step, count))
    return used


def test_a_quiet_machine_keeps_every_thread_and_probes_ever_more_rarely():
    tuner = ThreadTuner([2, 1])
    used = run(tuner, lambda step, n: {2: 1.0, 1: 1.7}[n], 2000)
    assert tuner.current == 2 and not tuner.switches
    probes = [i for i in range(1, len(used)) if used[i] == 1 and used[i - 1] == 2]
    assert 3 <= len(probes) <= 8  # the gap between probes doubles: 8, 50, 100, 200, 400, 800 …
    assert used.count(1) / len(used) < 0.03


def test_a_busy_core_moves_to_fewer_threads_and_back_when_it_frees():
    # 2 threads: 1.0 s quiet, 3.2 s beside a busy process (barrier stalls); 1 thread: 1.7 s either way.
    busy = range(300, 700)
    tuner = ThreadTuner([2, 1])
    used = run(tuner, lambda step, n: (3.2 if step in busy else 1.0) if n == 2 else 1.7, 1200)
    assert used[250] == 2
    assert used[340:700].count(1) > 0.9 * 360  # found within a probe of the slowdown
    assert used[1150:] == [2] * 50  # back once the other process stopped
    assert [n for _, n in tuner.switches] == [1, 2]


def test_one_thread_or_a_gpu_means_no_tuning():
    assert not ThreadTuner.for_device(torch.device("cuda")).active
    assert not ThreadTuner([1]).active
    assert not ThreadTuner.for_device(torch.device("cpu"), world=2).active


def test_a_run_keeps_its_thread_count_unless_asked_to_follow_the_load():
    """Two runs of one command sum in the same order: the count follows the load only when asked."""
    cpu = torch.device("cpu")
    fixed = ThreadTuner.for_run(cpu)
    assert not fixed.active and fixed.current == torch.get_num_threads()
    assert ThreadTuner.for_run(cpu, threads=1).candidates == [1]
    assert ThreadTuner.for_run(cpu, follow_load=True).active == (torch.get_num_threads() >= 2)
    assert not ThreadTuner.for_run(cpu, threads=2, follow_load=True).active  # a count given is kept
