"""torchrun detection: which rank this process is, and the process group."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; gloo on CPU, nccl on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device_name != "cpu" and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def all_reduce_mean(total: float, count: int, world: int) -> float:
    """The mean of a per-rank (total, count) over every rank."""
    if world <= 1:
        return total / max(count, 1)
    t = torch.tensor([total, float(count)], dtype=torch.float64)
    dist.all_reduce(t)
    return float(t[0] / t[1].clamp_min(1))


def barrier(world: int) -> None:
    if world > 1:
        dist.barrier()


def shutdown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
