"""Landmark accuracy of a backend on synthetic videos, against their true landmarks.

Runs ``auhm landmarks`` (detection on the first frame and after a loss, tracking in between) on
videos written by ``auhm synth`` and compares with the ``auhm_truth`` sidecars: the share of
frames with a face found, and the mean point error normalised by the inter-ocular distance
(outer eye corners 36 and 45), over the frames found.

    python bench/landmark_accuracy.py demo_out/heldout --backend auhm --model demo_out/runs/landmarks/best.pt
    python bench/landmark_accuracy.py demo_out/heldout --backend dlib
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from auhm.landmarks.job import LandmarksConfig, extract_landmarks

XS, YS = [f"x_{i}" for i in range(68)], [f"y_{i}" for i in range(68)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", type=Path, help="a folder written by auhm synth (DISFA layout)")
    ap.add_argument("--backend", default="auhm")
    ap.add_argument("--model", type=Path, default=None)
    args = ap.parse_args()

    videos = sorted(str(p) for p in (args.corpus / "Videos_LeftCamera").glob("*.avi"))
    out = Path(tempfile.mkdtemp()) / "landmarks.parquet"
    t0 = time.perf_counter()
    extract_landmarks(videos, out, LandmarksConfig(backend=args.backend, model=args.model, quiet=True))
    seconds = time.perf_counter() - t0
    found = pd.read_parquet(out)
    found_rate, errors = [], []
    for video in videos:
        pred = found[found["video"] == video].set_index("frame").sort_index()
        truth = pd.read_parquet(args.corpus / "auhm_truth" / f"{Path(video).stem}.parquet").set_index("frame").loc[pred.index]
        ok = pred["success"].to_numpy(bool)
        p = np.stack([pred[XS].to_numpy(float), pred[YS].to_numpy(float)], -1)[ok]
        t = np.stack([truth[XS].to_numpy(float), truth[YS].to_numpy(float)], -1)[ok]
        iod = np.linalg.norm(t[:, 36] - t[:, 45], axis=-1)
        errors.append(np.linalg.norm(p - t, axis=-1).mean(axis=1) / iod)
        found_rate.append(ok.mean())
        print(f"{Path(video).name}: face found in {ok.mean():.1%} of {len(ok)} frames, NME {errors[-1].mean():.4f}")
    nme = np.concatenate(errors)
    print(f"{args.backend}: {len(found)} frames in {seconds:.1f} s ({len(found) / seconds:.1f} frames/s), "
          f"face found in {np.mean(found_rate):.1%}, mean NME {nme.mean():.4f} (median {np.median(nme):.4f})")


if __name__ == "__main__":
    main()
