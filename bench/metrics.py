"""How fast au_scores and the video bootstrap are: one million frames × 12 AUs (target: < 2 s).

Prints the time of each, and, as a peer, a per-AU loop of numpy/ICC-by-ANOVA calls on the same
data (the obvious implementation) with the ratio measured in this run.

    OMP_NUM_THREADS=1 python bench/metrics.py [--frames 1000000] [--aus 12] [--videos 200] [--boot 1000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from auhm.metrics import au_scores, icc3_1
from auhm.metrics.bootstrap import bootstrap_scores


def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def per_au_loop(y_true: np.ndarray, y_pred: np.ndarray) -> list[tuple[float, ...]]:
    """The peer: one AU at a time, NaN rows dropped, numpy for each metric."""
    out = []
    for j in range(y_true.shape[1]):
        keep = np.isfinite(y_true[:, j]) & np.isfinite(y_pred[:, j])
        t, p = y_true[keep, j], y_pred[keep, j]
        d = t - p
        out.append((icc3_1(t, p), np.mean(d * d), np.mean(np.abs(d)), np.corrcoef(t, p)[0, 1]))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", type=int, default=1_000_000)
    ap.add_argument("--aus", type=int, default=12)
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 6, (args.frames, args.aus)).astype(np.float32)
    y_pred = (y_true + rng.normal(0, 0.8, y_true.shape)).clip(0, 5).astype(np.float32)
    y_true[rng.random(y_true.shape) < 0.02] = np.nan  # unlabelled frames
    videos = np.sort(rng.integers(0, args.videos, args.frames))
    aus = tuple(range(1, args.aus + 1))

    t_scores = best_of(lambda: au_scores(y_true, y_pred, aus), args.repeat)
    t_loop = best_of(lambda: per_au_loop(y_true, y_pred), args.repeat)
    t_boot = best_of(lambda: bootstrap_scores(y_true, y_pred, videos, aus, n_boot=args.boot), args.repeat)
    print(f"frames={args.frames:,} aus={args.aus} videos={args.videos} boot={args.boot} (best of {args.repeat})")
    print(f"au_scores (all 7 metrics)          {t_scores:7.3f} s   {args.frames / t_scores / 1e6:6.2f} M frames/s")
    print(f"per-AU numpy loop (ICC MSE MAE r)  {t_loop:7.3f} s   ratio loop/au_scores = {t_loop / t_scores:.2f}x")
    print(f"bootstrap CI, {args.boot} video resamples {t_boot:7.3f} s")


if __name__ == "__main__":
    main()
