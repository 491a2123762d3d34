"""How each face detector's boxes sit on a face compared with dlib HOG's, the convention auhm's fits
are seeded in (:class:`auhm.face.detectors.BoxConvention`).

On the real clips and photos of ../shared/media (every ``--every``-th frame), each face that HOG
and the detector both find (one to one, IoU ≥ 0.3) gives where HOG's box is in the detector's box
units: its centre's shift down (in the detector's box heights), its height and its width over the
detector's. The medians are the detector's ``BoxConvention``; the IoU with HOG's box is shown for
the detector's own boxes and for them redrawn with the convention it ships with. ``--crowd DIR``
does the same on synthetic crowd videos (their faces are drawn, not real: a check, not the source).

    OMP_NUM_THREADS=1 python bench/box_convention.py [--every 8] [--crowd /tmp/crowd8]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import cv2
import numpy as np

from auhm.face.boxes import box_iou, match_boxes
from auhm.face.detectors import BoxConvention, available, make_detector
from auhm.video import VideoReader

MEDIA = Path(os.environ.get("AUHM_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))
CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov")
PHOTOS = ("multi_face.jpg", "single_face.jpg", "einstein.jpg")


def media_frames(every: int):
    for clip in CLIPS:
        if (MEDIA / clip).exists():
            yield from (f for i, _, f in VideoReader(MEDIA / clip).frames() if i % every == 0)
    for photo in PHOTOS:
        if (MEDIA / photo).exists():
            yield cv2.cvtColor(cv2.imread(str(MEDIA / photo)), cv2.COLOR_BGR2RGB)


def crowd_frames(folder: Path, every: int):
    for video in sorted((folder / "videos").glob("*.mp4")):
        yield from (f for i, _, f in VideoReader(video).frames() if i % every == 0)


def hog_in_units_of(hog_box: np.ndarray, box: np.ndarray) -> tuple[float, float, float]:
    """(shift_y, height, width) of ``hog_box`` in units of ``box``."""
    h, w = box[3] - box[1], box[2] - box[0]
    return (((hog_box[1] + hog_box[3]) - (box[1] + box[3])) / 2 / h, (hog_box[3] - hog_box[1]) / h, (hog_box[2] - hog_box[0]) / w)


def measure(frames, hog, detectors: dict) -> dict:
    pairs = {name: [] for name in detectors}  # name → [(hog box, its box)]
    for frame in frames:
        hog_boxes = np.array([b for b, _ in hog(frame)]).reshape(-1, 4)
        for name, (own, _) in detectors.items():
            boxes = np.array([b for b, _ in own(frame)]).reshape(-1, 4)
            pairs[name] += [(hog_boxes[r], boxes[c]) for r, c in match_boxes(hog_boxes, boxes, 0.3)]
    return pairs


def report(title: str, pairs: dict, detectors: dict) -> None:
    print(f"== {title}")
    for name, found in pairs.items():
        if not found:
            print(f"  {name}: no face found by both")
            continue
        units = np.array([hog_in_units_of(h, b) for h, b in found])
        q = np.percentile(units, [25, 50, 75], axis=0)
        shipped = detectors[name][1]
        iou_own = np.median([box_iou(h[None], b[None])[0, 0] for h, b in found])
        iou_drawn = np.median([box_iou(h[None], shipped(b)[None])[0, 0] for h, b in found])
        print(f"  {name}: {len(found)} faces; HOG's box in its units: shift_y {q[1, 0]:+.3f} ({q[0, 0]:+.3f} … {q[2, 0]:+.3f}), "
              f"height {q[1, 1]:.3f} ({q[0, 1]:.3f} … {q[2, 1]:.3f}), width {q[1, 2]:.3f} ({q[0, 2]:.3f} … {q[2, 2]:.3f}); "
              f"median IoU with HOG: own boxes {iou_own:.3f}, drawn as shipped {iou_drawn:.3f} ({shipped})")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--every", type=int, default=8, help="look at every k-th frame of a clip")
    ap.add_argument("--crowd", type=Path, help="also a synthetic crowd corpus (auhm synth --layout crowd)")
    args = ap.parse_args()
    hog = make_detector("dlib")
    detectors = {}  # name → (its own boxes, the convention it ships with)
    if available("mtcnn"):
        from auhm.face.mtcnn import MtcnnDetector

        detectors["mtcnn"] = (MtcnnDetector(convention=BoxConvention()), MtcnnDetector.AS_HOG)
    if available("opencv"):
        from auhm.face.detectors import HaarDetector

        detectors["opencv"] = (HaarDetector(convention=BoxConvention()), HaarDetector.AS_HOG)
    pairs = measure(media_frames(args.every), hog, detectors)
    if available("dlib-cnn"):  # seconds a frame: every 4th frame looked at by the others
        from auhm.face.detectors import CnnDetector

        slow = {"dlib-cnn": (CnnDetector(convention=BoxConvention()), CnnDetector.AS_HOG)}
        pairs.update(measure(media_frames(args.every * 4), hog, slow))
        detectors.update(slow)
    report(f"real faces ({MEDIA})", pairs, detectors)
    if args.crowd:
        report(f"synthetic crowd ({args.crowd})", measure(crowd_frames(args.crowd, args.every * 3), hog, detectors), detectors)


if __name__ == "__main__":
    main()
