"""Annotation throughput on any device, without dlib: synthetic videos with their true landmarks.

In one process, on the same videos and checkpoint (paper-size scratch model, untrained):
  (a) ``auhm.infer.annotate`` with ``--landmarks truth`` (decode thread → crops → batched model);
  (b) a per-frame loop: crop, one fp32 forward per frame (batch 1);
  (c) the model alone on pre-cut crops at (a)'s batch size and precision.
Prints frames/s for each and the ratios a/b and a/c. This is the script for the GPU machine
(``--device auto`` picks CUDA); bench/annotate.py measures the CPU with dlib tracking.

    python bench/annotate_synth.py [--videos 2] [--frames 400] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from auhm.face.crop import crop_face
from auhm.infer.annotate import AnnotateConfig, annotate
from auhm.infer.predictor import Predictor
from auhm.infer.workers import tracking_workers
from auhm.models import build_model, save_checkpoint
from auhm.synth import SynthConfig, make_corpus
from auhm.targets import DATASET_AUS
from auhm.video import VideoReader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="tracking workers, one video each (default: annotate's: 1 on a CPU, one per spare core beside a GPU)")
    ap.add_argument("--reference-frames", type=int, default=200)
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="auhm-bench-"))
    width, height = (int(v) for v in args.size.lower().split("x"))
    make_corpus(SynthConfig(tmp / "corpus", subjects=args.videos, frames=args.frames, width=width, height=height, seed=0), quiet=True)
    videos = sorted(str(p) for p in (tmp / "corpus" / "Videos_LeftCamera").glob("*.avi"))
    aus = DATASET_AUS["disfa"]
    torch.manual_seed(0)
    model = build_model("scratch", aus, "paper")
    ckpt = save_checkpoint(tmp / "scratch.pt", model, {"crop": {"size": 256}})

    cfg = AnnotateConfig(ckpt, tmp / "pred.parquet", landmarks="truth", batch_size=args.batch_size,
                         device=args.device, precision=args.precision, workers=args.workers, quiet=True)
    predictor = Predictor.from_checkpoint(ckpt, args.device, args.precision)
    print(f"device {predictor.device} ({torch.cuda.get_device_name() if predictor.device.type == 'cuda' else 'cpu'}), "
          f"precision {predictor.precision}, batch {args.batch_size}, workers {min(len(videos), tracking_workers(args.workers, predictor.device))} processes, {len(videos)} videos × {args.frames} frames {args.size}")

    annotate(videos[:1], AnnotateConfig(ckpt, tmp / "warm.parquet", landmarks="truth", batch_size=args.batch_size,
                                        device=args.device, precision=args.precision, quiet=True))  # warm-up
    t0 = time.perf_counter()
    result = annotate(videos, cfg)
    a = result.frames / (time.perf_counter() - t0)
    assert len(pd.read_parquet(cfg.out)) == result.frames == args.videos * args.frames

    # crops of the first video, cut as annotate cuts them, for (b) and (c)
    truth = pd.read_parquet(tmp / "corpus" / "auhm_truth" / (Path(videos[0]).stem + ".parquet")).set_index("frame")
    xs, ys = [f"x_{i}" for i in range(68)], [f"y_{i}" for i in range(68)]
    crops = []
    for i, _, frame in VideoReader(videos[0]).frames():
        lms = np.stack([truth.loc[i, xs].to_numpy(float), truth.loc[i, ys].to_numpy(float)], -1)
        crops.append(crop_face(frame, lms, predictor.crop)[0])
    crops = np.stack(crops)

    reference = Predictor.from_checkpoint(ckpt, args.device, "fp32")
    reference(crops[:1])
    n = min(args.reference_frames, len(crops))
    t0 = time.perf_counter()
    for k in range(n):
        reference(crops[k : k + 1])
    b = n / (time.perf_counter() - t0)

    predictor(crops[: args.batch_size])
    t0 = time.perf_counter()
    for k in range(0, len(crops), args.batch_size):
        predictor(crops[k : k + args.batch_size])
    c = len(crops) / (time.perf_counter() - t0)
    print(f"(a) annotate {a:.1f} frames/s | (b) per-frame fp32 loop {b:.1f} frames/s | (c) model alone {c:.1f} frames/s")
    print(f"a/b = {a / b:.2f}   a/c = {a / c:.2f}")


if __name__ == "__main__":
    main()
