"""torchrun detection: which rank this process is, the process group, and work shared by ranks.

Validation, the read-out's fit and out-of-fold prediction run on every rank, each on its
contiguous share of the crops, and every rank gets all the rows back in order: no rank waits in
a collective through work another does alone (which risks the process group's timeout on a
real fold), and no rank repeats another's work.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
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


def rank_device(device: torch.device, ddp: Dist) -> torch.device:
    """This rank's GPU under torchrun (its LOCAL_RANK), made the current one; any other device as it is."""
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    return device


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


def share(n: int, rank: int, world: int) -> np.ndarray:
    """The positions 0 … n−1 one rank works on: contiguous, in rank order, sizes within one of each other."""
    return np.array_split(np.arange(n), max(world, 1))[rank]


def gather_rows(rows: np.ndarray, world: int) -> np.ndarray:
    """Every rank's rows, concatenated in rank order, on every rank (``rows`` as it is alone)."""
    if world <= 1:
        return rows
    parts: list = [None] * world
    dist.all_gather_object(parts, rows)
    return np.concatenate([p for p in parts if len(p)] or [rows])


def broadcast_buffers(model: torch.nn.Module, world: int) -> None:
    """Rank 0's buffers (BatchNorm's running statistics, the read-out's scale) on every rank:
    the model each rank validates is then the one rank 0 saves."""
    if world > 1:
        for buffer in model.buffers():
            dist.broadcast(buffer.data, 0)
