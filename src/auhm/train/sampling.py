"""The order training items are seen in: one seeded permutation per epoch, sharded over ranks."""

from __future__ import annotations

import math

import numpy as np


class EpochBatches:
    """Batches of (position, epoch) keys: one seeded permutation per epoch, sharded over ranks.

    Does DistributedSampler's job (each rank a disjoint, equal share), plus a start batch so that
    a resumed run skips exactly the batches already trained on.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.per_rank = n // world if world > 1 else n
        self.drop_last = self.per_rank >= batch_size  # a lone sample would break BatchNorm
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size if self.drop_last else math.ceil(self.per_rank / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start

    def __iter__(self):
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        mine = order[self.rank :: self.world][: self.per_rank]
        for b in range(self.start, self.batches_per_epoch()):
            yield [(int(p), self.epoch) for p in mine[b * self.batch_size : (b + 1) * self.batch_size]]
