"""Annotation throughput on any device: synthetic videos, with their true landmarks at hand.

In one process, on the same videos and checkpoint (paper size by default, untrained AU layers:
weights do not change speed):
  (a) ``auhm annotate`` on each of ``--paths``: ``truth`` (true landmarks), ``auto`` (the
      model's own landmarks track, detection with dlib's HOG or OpenCV's cascade; needs a
      transfer method and a trained ``--backbone``), ``dlib`` (skipped where dlib's predictor is
      not installed);
  (b) a per-frame loop: crop, one fp32 forward per frame (batch 1);
  (c) the model alone on pre-cut crops at (a)'s batch size and precision.
Prints frames/s for each, the ratios a/b and a/c, and where annotate's model thread spent its
time (ms a frame). This is the script for the GPU machine (``--device auto`` picks CUDA);
bench/annotate.py measures the CPU with dlib tracking. ``--json`` writes the figures.

    python bench/annotate_synth.py [--videos 2] [--frames 400] [--batch-size 128] [--paths truth auto dlib]
        [--method adaptation --backbone runs/landmarks/best.pt] [--json out.json]
"""

from __future__ import annotations

import argparse
import atexit
import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from auhm.face.crop import crop_face
from auhm.infer.annotate import AnnotateConfig, annotate
from auhm.infer.predictor import Predictor
from auhm.infer.sources import dlib_available
from auhm.infer.workers import tracking_workers
from auhm.models import build_model, save_checkpoint
from auhm.models.checkpoint import read_checkpoint_info
from auhm.synth import SynthConfig, make_corpus
from auhm.data.corpora import corpus_spec
from auhm.video import VideoReader


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=2)
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--size", default="640x360")
    ap.add_argument("--batch-size", type=int, default=None, help="default: annotate's (128 on a GPU, 8 on a CPU)")
    ap.add_argument("--device", default="auto")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="tracking workers, one video each (default: annotate's: 1 on a CPU, one per spare core beside a GPU)")
    ap.add_argument("--reference-frames", type=int, default=200)
    ap.add_argument("--paths", nargs="+", default=["truth"], choices=["truth", "auto", "dlib"])
    ap.add_argument("--method", default="scratch", help="AU method (auto needs a transfer method, e.g. adaptation)")
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--backbone", type=Path, default=None, help="landmark checkpoint for a transfer method (auto tracks with it)")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = ap.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="auhm-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # the checkpoint, corpus and tables made here
    width, height = (int(v) for v in args.size.lower().split("x"))
    make_corpus(SynthConfig(tmp / "corpus", subjects=args.videos, frames=args.frames, width=width, height=height, seed=0,
                            contact_sheet=False), quiet=True)
    videos = sorted(str(p) for p in (tmp / "corpus" / "Videos_LeftCamera").glob("*.avi"))
    aus = corpus_spec("disfa").aus
    torch.manual_seed(0)
    options, info = {}, {"crop": {"size": 256}}
    if args.backbone is not None:
        options["backbone"] = str(args.backbone)
        landmarks = read_checkpoint_info(args.backbone)
        info = {"crop": landmarks.get("crop", {"size": 256}), "backbone_presence_threshold": landmarks.get("presence_threshold", 0.25)}
    model = build_model(args.method, aus, args.preset, **options)
    ckpt = save_checkpoint(tmp / f"{args.method}.pt", model, info)

    predictor = Predictor.from_checkpoint(ckpt, args.device, args.precision)
    batch = args.batch_size or (128 if predictor.device.type == "cuda" else 8)
    device_name = torch.cuda.get_device_name() if predictor.device.type == "cuda" else "cpu"
    workers = min(len(videos), tracking_workers(args.workers, predictor.device))
    print(f"device {predictor.device} ({device_name}), {args.method} {args.preset} ({predictor.input_size}²), precision "
          f"{predictor.precision}, batch {batch}, {workers} tracking workers, {len(videos)} videos × {args.frames} frames {args.size}")
    figures: dict = {"device": device_name, "method": args.method, "preset": args.preset, "precision": predictor.precision,
                     "batch": batch, "videos": len(videos), "frames": args.frames, "size": args.size, "paths": {}}

    def run(path: str, out: Path, inputs: list[str]):
        cfg = AnnotateConfig(ckpt, out, landmarks=path, batch_size=batch, device=args.device, precision=args.precision,
                             workers=args.workers, quiet=True)
        t0 = time.perf_counter()
        res = annotate(inputs, cfg)
        return res, time.perf_counter() - t0

    run("truth", tmp / "warm.parquet", videos[:1])  # warm-up: kernels, caches
    for path in args.paths:
        if path == "dlib" and not dlib_available():
            print(f"(a) {path}: skipped (dlib or its 68-point predictor is not installed)")
            continue
        res, wall = run(path, tmp / f"pred_{path}.parquet", videos)
        df = pd.read_parquet(tmp / f"pred_{path}.parquet")
        assert len(df) == res.frames == args.videos * args.frames, (len(df), res.frames)
        stages = {k: 1000 * v / res.frames for k, v in sorted(res.stages.items(), key=lambda kv: -kv[1])}
        figures["paths"][path] = {"frames_per_s": res.frames / wall, "seconds": wall, "faces": int(df.success.sum()),
                                  "landmark_backend": res.landmark_backend, "fallbacks": len(res.fallbacks), "stage_ms_per_frame": stages}
        print(f"(a) annotate --landmarks {path}: {res.frames / wall:.1f} frames/s ({res.landmark_backend}; faces in "
              f"{int(df.success.sum())} of {res.frames} frames; {len(res.fallbacks)} videos fell back); model thread, ms a frame: "
              + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))

    # crops of the first video, cut as annotate cuts them, for (b) and (c)
    truth = pd.read_parquet(tmp / "corpus" / "auhm_truth" / (Path(videos[0]).stem + ".parquet")).set_index("frame")
    xs, ys = [f"x_{i}" for i in range(68)], [f"y_{i}" for i in range(68)]
    crops = []
    for i, _, frame in VideoReader(videos[0]).frames():
        lms = np.stack([truth.loc[i, xs].to_numpy(float), truth.loc[i, ys].to_numpy(float)], -1)
        crops.append(crop_face(frame, lms, predictor.crop)[0])
    crops = np.stack(crops)
    while len(crops) < 4 * batch:  # enough for several batches
        crops = np.concatenate([crops, crops])

    reference = Predictor.from_checkpoint(ckpt, args.device, "fp32")
    reference(crops[:1])
    n = min(args.reference_frames, len(crops))
    t0 = time.perf_counter()
    for k in range(n):
        reference(crops[k : k + 1])
    b = n / (time.perf_counter() - t0)

    predictor(crops[:batch])
    t0 = time.perf_counter()
    for k in range(0, len(crops), batch):
        predictor(crops[k : k + batch])
    if predictor.device.type == "cuda":
        torch.cuda.synchronize()
    c = len(crops) / (time.perf_counter() - t0)
    figures |= {"per_frame_loop_frames_per_s": b, "model_alone_frames_per_s": c}
    print(f"(b) per-frame fp32 loop {b:.1f} frames/s | (c) model alone {c:.1f} frames/s")
    for path, f in figures["paths"].items():
        f |= {"a_over_b": f["frames_per_s"] / b, "a_over_c": f["frames_per_s"] / c}
        print(f"{path}: a/b = {f['a_over_b']:.2f}   a/c = {f['a_over_c']:.2f}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2))


if __name__ == "__main__":
    main()
