"""Where the CPU training step loses time to the data pipeline: the step itself, after a batch is built.

Times the same training step (small preset by default) fed three ways, in interleaved rounds of 5
steps so that a shared machine's drift moves all three alike:
  same      – one batch, pre-loaded, every step (bench/train.py's "model" figure);
  prebuilt  – fresh batches, all built before the timing starts;
  built     – each batch built by auhm train's loader right before its step (bench/train.py's "full").
For each: ms to build the batch, to convert it to the model's tensor, for the step itself, and
the process's minor page faults per step (with glibc's malloc defaults, ~4,000 a step in every
feed: torch's freed activations go back to the OS and return as fresh pages).

    python bench/train_step_after_build.py [--method adaptation] [--precision bf16] [--rounds 6]
"""

from __future__ import annotations

import argparse
import itertools
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import default_collate

from auhm.train.steps import batch_to_device
from train import make_shards, training_setup  # bench/train.py, beside this script


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--method", default="adaptation")
    ap.add_argument("--preset", default="small")
    ap.add_argument("--precision", default="bf16")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--rounds", type=int, default=6, help="rounds of 5 steps per feed")
    ap.add_argument("--crop-size", type=int, default=256)
    args = ap.parse_args()
    device = torch.device("cpu")
    bs = args.batch_size
    with tempfile.TemporaryDirectory() as tmp:
        shards = make_shards(Path(tmp), bs * 24, args.crop_size)
        setup = training_setup(args.method, args.preset, args.precision, bs, shards, None, device)
        built = setup.endless()
        same = default_collate([setup.view[(i, 0)] for i in range(bs)])
        prebuilt = itertools.cycle([next(built) for _ in range(10)])
        feeds = {"same": lambda: same, "prebuilt": lambda: next(prebuilt), "built": lambda: next(built)}

        def step(raw) -> tuple[float, float, int]:
            t0 = time.perf_counter()
            images, rest = batch_to_device(raw, device, setup.channels_last)
            t1 = time.perf_counter()
            faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            setup.step(images, rest)
            return t1 - t0, time.perf_counter() - t1, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults

        for feed in feeds.values():  # warm-up
            for _ in range(2):
                step(feed())
        totals = {k: np.zeros(4) for k in feeds}
        for _ in range(args.rounds):
            for name, feed in feeds.items():
                for _ in range(5):
                    t0 = time.perf_counter()
                    raw = feed()
                    totals[name] += (time.perf_counter() - t0, *step(raw))
        n = 5 * args.rounds
        print(f"{args.preset} {args.method} {args.precision}, batch {bs}, {args.crop_size}-px crops, {torch.get_num_threads()} threads, {n} steps per feed")
        print(f"{'feed':9s} {'build ms':>9s} {'to-tensor ms':>13s} {'step ms':>8s} {'faults/step':>12s}")
        for name, (build, convert, seconds, faults) in totals.items():
            print(f"{name:9s} {1e3 * build / n:9.2f} {1e3 * convert / n:13.2f} {1e3 * seconds / n:8.2f} {faults / n:12.0f}")


if __name__ == "__main__":
    main()
