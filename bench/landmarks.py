"""Landmark frames/s per backend on this machine.

    python bench/landmarks.py [--media ../shared/media] [--frames 200] [--device cuda]

dlib: the real clips of ../shared/media, tracked end to end (Tracker over pre-decoded frames,
so decoding is not counted) and, for comparison, detection on every frame (what an untracked
pipeline does). auhm: the landmark network's small and paper presets, untrained (speed only):
a tracked frame (fit + one refinement) and a full-frame search (detect). fan: only when its
weights are in face-alignment's cache. With ``--device cuda`` the auhm figures are on the GPU,
and the landmarks it finds are compared with the CPU's for the same weights.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from auhm.face import Tracker
from auhm.face.base import BackendUnavailable
from auhm.landmarks import make_backend
from auhm.video import FrameBatch, VideoReader


def decoded(path: Path, limit: int) -> FrameBatch:
    batches = []
    n = 0
    for b in VideoReader(path).batches(64):
        batches.append(b)
        n += len(b)
        if n >= limit:
            break
    idx = np.concatenate([b.indices for b in batches])[:limit]
    return FrameBatch(idx, idx / 25.0, np.concatenate([b.frames for b in batches])[:limit])


def rate(n: int, fn) -> float:
    start = time.perf_counter()
    fn()
    return n / (time.perf_counter() - start)


def bench_tracker(backend, frames: FrameBatch) -> tuple[float, int, int]:
    tracker = Tracker(backend)
    tracker.start("bench")
    found = []
    fps = rate(len(frames), lambda: found.append(tracker.update(frames).success.sum()))
    return fps, int(found[0]), tracker.detections


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--media", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "media")
    ap.add_argument("--frames", type=int, default=200)
    ap.add_argument("--device", default="cpu", help="device for the network backends")
    args = ap.parse_args()
    print(f"torch threads {torch.get_num_threads()}")

    clips = [c for c in ("WolfgangLanger_Pexels.mp4", "single_face.mp4", "no_face.mp4") if (args.media / c).is_file()]
    try:
        dlib = make_backend("dlib")
    except (BackendUnavailable, ImportError) as e:
        print(f"dlib: skipped ({e})")
        clips = []
    for clip in clips:
        frames = decoded(args.media / clip, args.frames)
        h, w = frames.frames.shape[1:3]
        fps, faces, detections = bench_tracker(dlib, frames)
        every = rate(len(frames), lambda: [dlib.fit(f[None], d[0][0][None]) for f in frames.frames if (d := dlib.detect(f[None])[0])])
        print(f"dlib  {clip:28s} {w}x{h} {len(frames):4d} frames: tracked {fps:7.1f} frames/s "
              f"(face in {faces}, detect ran on {detections}); detect every frame {every:7.1f} frames/s; ratio {fps / every:.2f}x")

    from auhm.landmarks.network import NetworkBackend
    from auhm.face.crop import CropConfig
    from auhm.models import build_model

    frame = (np.random.default_rng(0).integers(0, 255, (360, 640, 3))).astype(np.uint8)
    box = np.array([[220.0, 100.0, 400.0, 300.0]])
    gpu = args.device != "cpu"
    for preset, n, k in ((("small", 64, 8), ("paper", 64, 4)) if gpu else (("small", 16, 2), ("paper", 8, 1))):
        torch.manual_seed(0)
        model = build_model("landmarks", preset=preset)
        size = model.input_size
        info = {"crop": CropConfig(size=size).to_dict()}
        if gpu:
            on_cpu = NetworkBackend(model, info).fit(frame[None], box)[0]
        backend = NetworkBackend(model, info, device=args.device)
        found = backend.fit(frame[None], box)[0]  # also the warm-up
        if gpu:
            print(f"auhm  {preset:5s} {args.device} vs cpu: max landmark difference {np.abs(found - on_cpu).max():.3f} px")
        batch = np.repeat(frame[None], n, 0)
        tracked_1 = rate(n, lambda: [backend.fit(frame[None], box) for _ in range(n)])
        tracked_b = rate(n, lambda: backend.fit(batch, np.repeat(box, n, 0)))
        search = rate(k, lambda: [backend.detect(frame[None]) for _ in range(k)])
        print(f"auhm  {preset:5s} preset ({size}px crops, untrained) 640x360 on {args.device}: tracked fit {tracked_1:6.1f} frames/s one by one, "
              f"{tracked_b:6.1f} frames/s batched ×{n} (ratio {tracked_b / tracked_1:.1f}x); full-frame search {search:5.2f} frames/s")

    try:
        fan = make_backend("fan")
    except BackendUnavailable as e:
        print(f"fan: skipped ({e})")
        return
    n = 4
    print(f"fan   tracked fit {rate(n, lambda: [fan.fit(frame[None], box) for _ in range(n)]):.2f} frames/s")


if __name__ == "__main__":
    main()
