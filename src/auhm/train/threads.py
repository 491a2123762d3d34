"""Training beside other busy processes: the CPU thread count that steps fastest right now.

A CPU step runs torch's parallel regions on every thread, and each region ends at a barrier.
When another process takes a core, the thread the OS deschedules holds up the others at every
barrier, and the step slows far below its fair share of the cores. Fewer threads then step
faster. The tuner tries the other thread count now and then, and at once when steps slow down,
and keeps whichever steps faster; while its choice keeps winning, it probes ever more rarely.
Only when asked (``auhm train --follow-load``): the thread count sets the order of a step's sums,
so by default it stays fixed and two runs of one command give the same weights.
"""

from __future__ import annotations

import statistics

import torch


class ThreadTuner:
    """Chooses between ``candidates`` torch thread counts from measured step times."""

    def __init__(self, candidates: list[int], probe: int = 6, first: int = 8, period: int = 50, max_period: int = 800,
                 slowdown: float = 1.3, margin: float = 0.05, set_threads=torch.set_num_threads):
        self.set_threads = set_threads
        self.candidates = list(dict.fromkeys(candidates))
        self.current = self.candidates[0]
        self.probe, self.base_period, self.max_period = probe, period, max_period
        self.period = period
        self.slowdown, self.margin = slowdown, margin
        self.steps = 0
        self.next_probe = first
        self.recent: list[float] = []  # step times at ``current`` since the last probe
        self.tried: list[float] = []  # step times of the running probe
        self.trying: int | None = None
        self.reference: float | None = None  # median step time at ``current`` after the last probe
        self.switches: list[tuple[int, int]] = []  # (step, thread count) at each change of choice

    @classmethod
    def for_device(cls, device: torch.device, world: int = 1) -> "ThreadTuner":
        """A tuner over (all threads, half of them) on a CPU; a no-op beside a GPU or under torchrun."""
        n = torch.get_num_threads()
        if device.type != "cpu" or world > 1 or n < 2:
            return cls([n])
        return cls([n, max(1, n // 2)])

    @classmethod
    def for_run(cls, device: torch.device, world: int = 1, threads: int | None = None, follow_load: bool = False) -> "ThreadTuner":
        """The tuner of a training run: fixed at ``threads`` (or torch's count), unless ``follow_load``
        asks for speed on a busy machine. A step's sums run in an order set by its thread count, so
        a count that follows the load makes two runs of one command differ in the weights' last bits."""
        if follow_load and not threads:
            return cls.for_device(device, world)
        return cls([threads or torch.get_num_threads()])

    @property
    def active(self) -> bool:
        return len(self.candidates) > 1

    def observe(self, seconds: float) -> None:
        """Record one step's time (taken at the count in force) and maybe change the count."""
        if not self.active:
            return
        self.steps += 1
        if self.trying is not None:
            self.tried.append(seconds)
            if len(self.tried) > self.probe:  # the first step at a new count pays for its thread pool
                self._end_probe()
            return
        self.recent = (self.recent + [seconds])[-self.probe:]
        slowed = self.reference is not None and len(self.recent) == self.probe and statistics.median(self.recent) > self.slowdown * self.reference
        if (self.steps >= self.next_probe and len(self.recent) == self.probe) or slowed:
            others = [c for c in self.candidates if c != self.current]
            self.trying, self.tried = others[len(self.switches) % len(others)], []
            self.set_threads(self.trying)

    def _end_probe(self) -> None:
        mine, theirs = statistics.median(self.recent), statistics.median(self.tried[1:])
        if theirs < (1 - self.margin) * mine:
            self.current, self.reference, self.period = self.trying, theirs, self.base_period
            self.switches.append((self.steps, self.current))
        else:
            self.reference, self.period = mine, min(self.max_period, 2 * self.period)
        self.recent, self.trying = [], None
        self.next_probe = self.steps + self.period
        self.set_threads(self.current)
