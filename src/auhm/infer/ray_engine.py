"""``--engine ray``: the same per-video work spread over a Ray cluster.

A pool of annotator actors (one GPU each when the cluster has GPUs, else one CPU each) loads
the checkpoint once per actor and runs the local pipeline (decode and tracking threads feeding
the model) on one video at a time, writing the same per-video files atomically; the driver only
hands out videos and counts. Paths (checkpoint, videos, output folder) must be readable and
writable from every node: a shared file system. Connects to an existing cluster when
``RAY_ADDRESS`` is set, else starts a local one with ``workers`` CPUs.
"""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Callable, Sequence

from auhm.errors import InputFailure, UsageError


class VideoAnnotator:
    """Ray actor: one loaded model, videos annotated one after another."""

    def __init__(self, config, meta: dict):
        from auhm.infer.predictor import Predictor
        from auhm.infer.sources import face_source

        self.config = replace(config, workers=1, quiet=True)
        self.meta = meta
        self.predictor = Predictor.from_checkpoint(config.model, config.device, config.precision)
        self.source = face_source(self.config, self.predictor)

    def annotate(self, job) -> tuple[list[str], list[InputFailure], int]:
        from auhm.infer.engine import run_jobs

        return run_jobs([job], self.predictor, self.source, self.meta, self.config)


def _connect(cpus: int) -> None:
    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address="auto", log_to_driver=False)
    else:
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)


def run_jobs_ray(jobs: Sequence, config, meta: dict, on_frames: Callable[[int], None] = lambda n: None):
    """Annotate ``jobs`` with a Ray actor pool; returns (videos written, failures, rows written)."""
    if not jobs:
        return [], [], 0
    try:
        import ray
        from ray.util import ActorPool
    except ImportError:
        raise UsageError("--engine ray: ray is not installed (pip install 'ray[default]')") from None
    workers = config.workers or 1  # actors: one per GPU of the cluster, else --workers
    _connect(workers)
    gpus = int(ray.cluster_resources().get("GPU", 0)) if config.device in ("auto", "cuda") else 0
    n_actors = max(1, min(len(jobs), gpus or workers))
    actor = ray.remote(num_cpus=1, num_gpus=1 if gpus else 0)(VideoAnnotator)
    pool = ActorPool([actor.remote(config, meta) for _ in range(n_actors)])
    written, failures, rows = [], [], 0
    for w, f, n in pool.map_unordered(lambda a, job: a.annotate.remote(job), list(jobs)):
        written += w
        failures += f
        rows += n
        on_frames(n)
    order = {j.video: i for i, j in enumerate(jobs)}
    written.sort(key=order.__getitem__)
    return written, failures, rows
