"""Speed of the synthetic corpus at 320×240 on one thread: rendering alone, then the whole
``make_corpus`` (rendering + MPEG-4 encoding + labels + sidecar), per layout.

    python bench/synth.py [--frames 400] [--subjects 3] [--difficulty medium]

The issue asks for ≥ 200 frames/s for the whole corpus on one core.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import torch  # noqa: E402

from auhm.synth import LAYOUTS, SynthConfig, make_corpus  # noqa: E402
from auhm.synth.corpus import simulate_subject  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--difficulty", default="medium")
    args = ap.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    n = args.subjects * args.frames
    print(f"320x240, {args.subjects} subjects x {args.frames} frames, difficulty {args.difficulty}, 1 thread")

    with tempfile.TemporaryDirectory() as tmp:
        config = SynthConfig(tmp, subjects=args.subjects, frames=args.frames, seed=0, difficulty=args.difficulty, contact_sheet=False)
        t0 = time.perf_counter()
        videos = [simulate_subject(config, i, LAYOUTS["disfa"]()) for i in range(args.subjects)]
        t_sim = time.perf_counter() - t0
        t0 = time.perf_counter()
        for v in videos:
            for t in range(args.frames):
                v.renderer.frame(t)
        t_draw = time.perf_counter() - t0
        print(f"render only      {n / (t_sim + t_draw):8.0f} frames/s  (setup {t_sim:.2f} s, drawing {1e3 * t_draw / n:.2f} ms/frame)")

        for layout in ("disfa", "bp4d", "fera2017"):
            out = os.path.join(tmp, layout)
            config = SynthConfig(out, layout=layout, subjects=args.subjects, frames=args.frames, seed=0, difficulty=args.difficulty)
            t0 = time.perf_counter()
            make_corpus(config, quiet=True)
            dt = time.perf_counter() - t0
            print(f"make_corpus {layout:9s}{n / dt:6.0f} frames/s  ({dt:.2f} s incl. encoding, labels, sidecar, contact sheet)")


if __name__ == "__main__":
    main()
