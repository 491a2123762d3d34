"""``--faces all`` against ``--faces largest`` on one-face videos, measured side by side in one run.

Each mode annotates the same real clips (``../shared/media`` or ``$AUHM_MEDIA``) in turns,
``--rounds`` times, with the stub model (the pipeline alone: decode, detection, tracking, crops,
writing) or a checkpoint; prints frames/s of each run and the ratio of the medians, and the same
for frames per CPU second of the process (all its threads), which other work on a shared machine
moves less. Other
one-face videos may be named instead (the demo's held-out videos, which its model accepts).

    python bench/faces_speed.py --landmarks dlib --rounds 3
    python bench/faces_speed.py --landmarks auto --model demo_out/runs/adaptation/best.pt demo_out/heldout/Videos_LeftCamera/*.avi
    python bench/faces_speed.py --landmarks auto --detector mtcnn --model … (the default path with another detector)
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import auhm
from auhm.infer.predictor import StubPredictor

CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--landmarks", default="dlib")
    ap.add_argument("--model", default=None, help="AU checkpoint (default: the stub model)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--detect-every", type=int, default=None, help="--faces all's detection schedule (default: annotate's)")
    ap.add_argument("--detector", default=None, help="annotate --detector (with --landmarks auto; default: annotate's)")
    ap.add_argument("videos", nargs="*", help="one-face videos (default: the real clips of ../shared/media)")
    args = ap.parse_args()
    media = Path(os.environ.get("AUHM_MEDIA") or Path(__file__).resolve().parents[2] / "shared" / "media")
    clips = args.videos or [str(media / c) for c in CLIPS]
    missing = [c for c in clips if not Path(c).is_file()]
    if missing:
        raise SystemExit(f"no such video: {missing[0]} (name one-face videos, or set AUHM_MEDIA to the real clips' folder)")
    rates: dict[str, list[float]] = {"all": [], "largest": []}
    cpu_rates: dict[str, list[float]] = {"all": [], "largest": []}  # frames per CPU second (all threads): steadier on a shared machine
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(args.model) if args.model else Path(tmp) / "stub.pt"
        if not args.model:
            model.touch()
        for k in range(args.rounds):
            for faces in ("all", "largest") if k % 2 == 0 else ("largest", "all"):
                cfg = auhm.AnnotateConfig(model=model, out=Path(tmp) / f"{faces}{k}.parquet", landmarks=args.landmarks, faces=faces,
                                          device="cpu", quiet=True, overwrite=True)
                if args.detect_every:
                    cfg.detect_every = args.detect_every
                cfg.detector = args.detector
                start, cpu = time.perf_counter(), time.process_time()
                res = auhm.annotate(clips, cfg, predictor=None if args.model else StubPredictor(aus=(1, 2, 4), input_size=256))
                rate = res.frames / (time.perf_counter() - start)
                rates[faces].append(rate)
                cpu_rates[faces].append(res.frames / (time.process_time() - cpu))
                print(f"round {k}: --faces {faces}: {res.frames} rows, {rate:.1f} frames/s, {cpu_rates[faces][-1]:.1f} frames per CPU second")
    a, b = statistics.median(rates["all"]), statistics.median(rates["largest"])
    print(f"median frames/s: all {a:.1f}, largest {b:.1f}; ratio all/largest {a / b:.2f} (goal ≥ 0.9)")
    a, b = statistics.median(cpu_rates["all"]), statistics.median(cpu_rates["largest"])
    print(f"median frames per CPU second: all {a:.1f}, largest {b:.1f}; ratio all/largest {a / b:.2f}")


if __name__ == "__main__":
    main()
