"""What checking the face only every k-th frame costs in accuracy and saves in time (dlib tracking).

For each video of ../shared/media, the Tracker runs with dlib's presence check (a HOG scan of a
window around the face) on every frame (the reference: verify_every 1, window face 100 px, the
previous default) and with cheaper settings. Prints, per setting: frames with a face, the share
of frames whose face/no-face answer equals the reference's, the landmark difference from the
reference as a share of the face size (mean and max), and ms per frame (decoding included).

    python bench/tracking_check.py [--batch 8]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from auhm.face import Tracker
from auhm.face.dlib_backend import DlibBackend
from auhm.video import VideoReader

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"
SETTINGS = [(100, 1), (80, 1), (80, 4), (80, 8)]  # (window face px, verify every k frames)


def track(video: Path, window_face: int, verify_every: int, batch: int) -> tuple[np.ndarray, np.ndarray, float]:
    tracker = Tracker(DlibBackend(window_face=window_face, verify_every=verify_every))
    tracker.start(str(video))
    found, points, n, t0 = [], [], 0, time.perf_counter()
    for frames in VideoReader(video).batches(batch):
        result = tracker.update(frames)
        found.append(result.success)
        points.append(result.landmarks)
        n += len(frames)
    return np.concatenate(found), np.concatenate(points), (time.perf_counter() - t0) / n * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batch", type=int, default=8, help="frames per tracker call (annotate's CPU default)")
    args = ap.parse_args()
    videos = sorted(p for p in MEDIA.glob("*") if p.suffix in (".mp4", ".mov"))
    if not videos:
        raise SystemExit(f"{MEDIA}: no videos (the benchmark needs ../shared/media)")
    for video in videos:
        ref_found, ref_points, ref_ms = track(video, *SETTINGS[0], args.batch)
        print(f"{video.name}: {len(ref_found)} frames, reference (window 100 px, check every frame): face in {ref_found.sum()}, {ref_ms:.2f} ms/frame")
        for window, every in SETTINGS[1:]:
            found, points, ms = track(video, window, every, args.batch)
            both = found & ref_found
            if both.any():
                size = (ref_points[both].max(1) - ref_points[both].min(1)).max(-1)
                diff = np.linalg.norm(points[both] - ref_points[both], axis=-1).mean(-1) / size
                mean, worst = f"{diff.mean():.4f}", f"{diff.max():.4f}"
            else:
                mean = worst = "-"
            print(f"  window {window} px, check every {every}: face in {found.sum()}, same answer {np.mean(found == ref_found):.1%}, "
                  f"landmark difference / face size mean {mean} max {worst}, {ms:.2f} ms/frame")


if __name__ == "__main__":
    main()
