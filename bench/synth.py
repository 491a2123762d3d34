"""Speed of the synthetic corpus at 320×240 on one thread: rendering alone, then the whole
``make_corpus`` (rendering + MPEG-4 encoding + labels + sidecar), per layout, and the landmark
layout's still images (JPEG + .pts).

    python bench/synth.py [--frames 400] [--subjects 3] [--difficulty medium]
    python bench/synth.py --learn 120      # also: is the corpus learnable? (see learnability())

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
from auhm.synth.corpus import label_matrix, simulate_subject  # noqa: E402


def learnability(seconds: float, difficulty: str, size: int = 64, subjects: int = 11, frames: int = 300) -> None:
    """A tiny CNN on truth-landmark face crops: the last quarter of the subjects held out, a fixed
    CPU time budget; prints held-out ICC(3,1) per AU next to a constant predictor's (0 by
    definition of no variance, so we print the label mean's MSE instead)."""
    import numpy as np
    from torch import nn

    from auhm.face.crop import CropConfig, crop_face
    from auhm.metrics import icc3_1

    layout = LAYOUTS["disfa"]()
    config = SynthConfig("/nonexistent", subjects=subjects, frames=frames, seed=99, difficulty=difficulty)
    crop = CropConfig(size=size)
    xs, ys, subj = [], [], []
    for i in range(config.subjects):
        v = simulate_subject(config, i, layout)
        labels = label_matrix(v, layout.aus)
        for t in range(config.frames):
            img, _ = crop_face(v.renderer.frame(t)[0], v.renderer.landmarks[t], crop)
            xs.append(img)
            ys.append(labels[t])
            subj.append(i)
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy(np.stack(ys)).float()
    train = torch.tensor(subj) < subjects - max(1, round(subjects / 4))
    net = nn.Sequential(
        nn.Conv2d(3, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
        nn.Conv2d(32, 64, 3, 2, 1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.Conv2d(64, 96, 3, 2, 1), nn.BatchNorm2d(96), nn.ReLU(),
        nn.Conv2d(96, 128, 3, 2, 1), nn.BatchNorm2d(128), nn.ReLU(),
        nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(512, len(layout.aus)))
    opt = torch.optim.AdamW(net.parameters(), 2e-3, weight_decay=1e-4)
    xt, yt = x[train], y[train]
    t0, steps = time.perf_counter(), 0
    g = torch.Generator().manual_seed(0)
    while time.perf_counter() - t0 < seconds:
        idx = torch.randint(len(xt), (64,), generator=g)
        xb = xt[idx]
        loss = nn.functional.mse_loss(net(xb), yt[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        steps += 1
    net.eval()
    with torch.no_grad():
        pred = net(x[~train]).clamp(0, 5).numpy()
        fit = torch.cat([net(xt[i:i + 256]) for i in range(0, len(xt), 256)]).clamp(0, 5).numpy()
    truth = y[~train].numpy()
    fit_iccs = [icc3_1(yt.numpy()[:, k], fit[:, k]) for k in range(truth.shape[1])]
    iccs = [icc3_1(truth[:, k], pred[:, k]) for k in range(truth.shape[1])]
    print(f"learnability ({difficulty}, {size}px crops, {int(train.sum())} train / {int((~train).sum())} held-out frames, "
          f"{steps} steps in {seconds:.0f} s):")
    print("  AU    " + " ".join(f"{a:>5d}" for a in layout.aus) + "   mean")
    print("  ICC   " + " ".join(f"{v:5.2f}" for v in iccs) + f"  {np.mean(iccs):5.2f}   (held-out subjects)")
    print("  fit   " + " ".join(f"{v:5.2f}" for v in fit_iccs) + f"  {np.mean(fit_iccs):5.2f}   (ICC on the training frames)")
    mse = ((pred - truth) ** 2).mean(0)
    const = ((truth - yt.numpy().mean(0)) ** 2).mean(0)
    print("  MSE   " + " ".join(f"{v:5.2f}" for v in mse) + f"  {mse.mean():5.2f}")
    print("  const " + " ".join(f"{v:5.2f}" for v in const) + f"  {const.mean():5.2f}   (train-mean predictor; its ICC is 0)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--subjects", type=int, default=3)
    ap.add_argument("--difficulty", default="medium")
    ap.add_argument("--identities", type=int, default=300, help="layout landmarks")
    ap.add_argument("--images", type=int, default=3000, help="layout landmarks")
    ap.add_argument("--learn-subjects", type=int, default=11)
    ap.add_argument("--learn-frames", type=int, default=300)
    ap.add_argument("--crop", type=int, default=64, help="crop side for the learnability check")
    ap.add_argument("--learn", type=float, default=0, help="seconds of tiny-CNN training for the learnability check (0: skip)")
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
        out = os.path.join(tmp, "landmarks")
        config = SynthConfig(out, layout="landmarks", identities=args.identities, images=args.images, seed=0, difficulty=args.difficulty)
        t0, c0 = time.perf_counter(), time.process_time()
        make_corpus(config, quiet=True)
        dt, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"make_corpus landmarks {args.images / dt:6.0f} images/s, {args.images / cpu:.0f} per CPU-second  ({args.images} images of "
              f"{args.identities} identities in {dt:.2f} s, {cpu:.2f} CPU-s, incl. JPEG, .pts, sidecar, contact sheet)")
    if args.learn:
        learnability(args.learn, args.difficulty, args.crop, args.learn_subjects, args.learn_frames)


if __name__ == "__main__":
    main()
