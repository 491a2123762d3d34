"""Multi-face tracking accuracy and speed of ``auhm annotate`` on synthetic crowd videos, and what
it makes of the real clips.

On the crowd videos (``auhm synth --layout crowd``; ``--make N`` writes N of them first) the
output's ``face`` track ids and boxes are scored against the truth tracks by
``auhm.metrics.tracking.track_scores``: IDF1, MOTA and ID switches from py-motmetrics, HOTA from
TrackEval; faces/s and frames/s are the run's wall clock. With a real model, AU accuracy too:
each output row named after the true face it lies on (``truth_faces``), then ``auhm score``'s join
on (video, frame, face) with the corpus's labels.parquet. On the real clips of ../shared/media
(``--real``): frames, frames with a face, the most faces in a frame, and tracks made.

Speed is measured warm, as over a long corpus: each variant first annotates one video untimed (a
process's first forwards at each batch size set up their kernels, which made whichever variant ran
first about a tenth slower), and with ``--rounds N`` the variants run N times, in turns whose order
alternates, each speed the median of its runs; the ratio line compares every variant with the
last one's frames/s (``--variant largest:faces=largest`` last: the cost of a face among several
against one face followed).

Each ``--variant NAME:key=value,…`` is one annotate run (all in this process, one after the
other) with those AnnotateConfig fields on top of ``--set key=value`` (given to every run), so
options the annotator gains (``faces``, ``detect_every``, ``max_gap`` …) need no change here. A
key ``rule.NAME`` sets the multi-face tracker's ``MultiTrackConfig.NAME`` instead (a rule with no
option, e.g. ``rule.max_leap=0.2``), for comparing rules by command rather than by editing code.

    OMP_NUM_THREADS=1 python bench/tracking.py /tmp/crowd --make 4 --model-stub --landmarks dlib \\
        --variant all:faces=all --variant largest:faces=largest --real
    OMP_NUM_THREADS=2 python bench/tracking.py /tmp/crowd12 --model best.pt --landmarks auto \\
        --variant now:detector=dlib --variant leap:detector=dlib,rule.max_leap=0.2
"""

from __future__ import annotations

import argparse
import ast
import atexit
import contextlib
import dataclasses
import json
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import auhm
from auhm.face.truth_backend import TRUTH_DIR
from auhm.metrics.tracking import face_rows, track_scores, truth_faces

MEDIA = Path(os.environ.get("AUHM_MEDIA", Path(__file__).resolve().parents[2] / "shared" / "media"))
CLIPS = ("single_face.mp4", "WolfgangLanger_Pexels.mp4", "face_noface.mov", "no_face.mp4")


def settings(pairs: list[str]) -> dict:
    """``key=value`` strings → {key: value}; values read as Python literals where they are one (3, 0.5, None, True)."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--set/--variant {pair!r}: expected key=value")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def variants(specs: list[str]) -> dict[str, dict]:
    if not specs:
        return {"default": {}}
    out = {}
    for spec in specs:
        name, _, rest = spec.partition(":")
        out[name] = settings([p for p in rest.split(",") if p])
    return out


def make_crowd(folder: Path, videos: int, frames: int, seed: int) -> None:
    from auhm.synth import SynthConfig, make_corpus

    make_corpus(SynthConfig(folder, layout="crowd", subjects=videos, frames=frames, width=640, height=360, seed=seed), quiet=True)


def crowd_truth(folder: Path) -> tuple[list[str], pd.DataFrame]:
    videos = sorted((folder / "videos").glob("*.mp4"))
    if not videos:
        raise SystemExit(f"{folder}: no crowd videos (videos/*.mp4); make some with --make N")
    parts = [pd.read_parquet(folder / TRUTH_DIR / f"{v.stem}.parquet").assign(video=str(v)) for v in videos]
    return [str(v) for v in videos], pd.concat(parts, ignore_index=True)


def run(videos: list[str], out: Path, args, extra: dict, predictor) -> tuple[pd.DataFrame, float]:
    rules = {k.removeprefix("rule."): v for k, v in extra.items() if k.startswith("rule.")}
    fields = {k: v for k, v in extra.items() if not k.startswith("rule.")}
    config = auhm.AnnotateConfig(model=args.model, out=out, landmarks=args.landmarks, device=args.device, quiet=True,
                                 overwrite=True, **fields)
    t0 = time.perf_counter()
    with tracker_rules(rules):
        auhm.annotate(videos, config, predictor=predictor)
    return auhm.read_predictions(out), time.perf_counter() - t0


@contextlib.contextmanager
def tracker_rules(rules: dict):
    """Within: the multi-face tracker's settings from the options, with ``rules`` on top."""
    from auhm.infer import annotate, sources

    options = sources.tracking_config
    unknown = set(rules) - {f.name for f in dataclasses.fields(sources.MultiTrackConfig)}
    if unknown:
        raise SystemExit(f"rule.{sorted(unknown)[0]}: MultiTrackConfig has no such field")

    def with_rules(config):
        return dataclasses.replace(options(config), **rules)

    sources.tracking_config = annotate.tracking_config = with_rules
    try:
        yield
    finally:
        sources.tracking_config = annotate.tracking_config = options


def au_on_true_faces(pred: pd.DataFrame, truth: pd.DataFrame, labels: pd.DataFrame, iou: float) -> dict:
    """``auhm score``'s join on (video, frame, face), each row's face being the true face it lies on."""
    from auhm.metrics.report import ScoreConfig, score_frames

    on_truth = pred.assign(face=truth_faces(pred, truth, iou))
    on_truth = on_truth[on_truth["face"].notna()]
    report = score_frames(on_truth, labels, ScoreConfig(Path("predictions"), Path("labels")))
    return {"icc": float(report.scores.loc["ICC", "Avg."]), "frames": int(report.join.rows_matched),
            "scores": report.to_dict()["scores"]}


def real_summary(pred: pd.DataFrame) -> dict[str, dict]:
    out = {}
    for video, rows in pred.groupby("video", sort=False):
        faces = face_rows(rows)
        out[Path(str(video)).name] = {"frames": int(rows["frame"].nunique()), "frames_with_face": int(faces["frame"].nunique()),
                                      "most_faces_in_a_frame": int(faces.groupby("frame").size().max()) if len(faces) else 0,
                                      "tracks": int(faces["face"].nunique())}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("folder", type=Path, help="a crowd corpus root (videos/, auhm_truth/)")
    ap.add_argument("--make", type=int, default=0, metavar="N", help="first write N crowd videos there")
    ap.add_argument("--frames", type=int, default=200, help="frames per video made by --make")
    ap.add_argument("--seed", type=int, default=0, help="seed of the videos made by --make")
    ap.add_argument("--model", type=Path, help="AU checkpoint (or --model-stub)")
    ap.add_argument("--model-stub", action="store_true", help="StubPredictor: fixed answers at no cost (tracking and pipeline only)")
    ap.add_argument("--landmarks", default="auto", help="annotate --landmarks (with --model-stub use dlib: the stub's landmarks track nothing)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE", help="an AnnotateConfig field for every run")
    ap.add_argument("--variant", action="append", default=[], metavar="NAME:K=V,K=V", help="one run with these fields (repeatable)")
    ap.add_argument("--real", action="store_true", help="also annotate the real clips of ../shared/media")
    ap.add_argument("--iou", type=float, default=0.5)
    ap.add_argument("--min-visible", type=float, default=0.5, help="truth faces less visible than this are not counted")
    ap.add_argument("--rounds", type=int, default=1, help="timed runs of each variant, in turns of alternating order (speed: the median)")
    ap.add_argument("--no-warm-up", dest="warm_up", action="store_false", help="time each variant's first run too (cold: kernels set up on first use)")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args()
    if args.make:
        make_crowd(args.folder, args.make, args.frames, args.seed)
    videos, truth = crowd_truth(args.folder)
    tmp = Path(tempfile.mkdtemp(prefix="auhm-tracking-"))
    atexit.register(shutil.rmtree, tmp, True)  # the runs' tables go when the bench ends, whichever way
    predictor = None
    if args.model_stub:
        from auhm.infer.predictor import StubPredictor

        predictor = StubPredictor(input_size=256, landmarks=args.landmarks == "auto")
        args.model = tmp / "stub.pt"
        args.model.write_bytes(b"stand-in network: nothing to load")
    elif args.model is None:
        raise SystemExit("give --model CKPT or --model-stub")
    base = settings(args.sets)
    report = {"settings": base, "landmarks": args.landmarks, "model": "stub" if args.model_stub else str(args.model),
              "cpus": os.cpu_count(), "runs": {}}
    runs = variants(args.variant)
    if args.warm_up:
        for name, extra in runs.items():
            run(videos[:1], tmp / f"{name}-warm-up.parquet", args, {**base, **extra}, predictor)
    walls: dict[str, list[float]] = {name: [] for name in runs}
    tables: dict[str, pd.DataFrame] = {}
    for k in range(max(1, args.rounds)):
        for name in list(runs) if k % 2 == 0 else list(runs)[::-1]:
            pred, wall = run(videos, tmp / f"{name}.parquet", args, {**base, **runs[name]}, predictor)
            walls[name].append(wall)
            tables.setdefault(name, pred)
    for name, extra in runs.items():
        pred, wall = tables[name], statistics.median(walls[name])
        scores = track_scores(pred, truth, iou=args.iou, min_visible=args.min_visible)
        frames, faces = int(pred.groupby("video")["frame"].nunique().sum()), len(face_rows(pred))
        o = scores["overall"]
        run_report = {"fields": {**base, **extra}, "frames": frames, "face_rows": faces, "seconds": wall, "all_seconds": walls[name],
                      "frames_per_s": frames / wall, "faces_per_s": faces / wall, "crowd": scores}
        labels = args.folder / "labels.parquet"
        if labels.exists() and not args.model_stub:  # AU accuracy on the rows that lie on a true face
            run_report["au"] = au_on_true_faces(pred, truth, pd.read_parquet(labels), args.iou)
            print(f"{name}: AU scores on the tracker's rows matched to a true face: mean ICC {run_report['au']['icc']:.3f} "
                  f"over {run_report['au']['frames']} face-frames")
        print(f"{name}: IDF1 {o['idf1']:.3f}, MOTA {o['mota']:.3f}, HOTA {o['hota']:.3f} (DetA {o['deta']:.3f}, AssA {o['assa']:.3f}), "
              f"{o['id_switches']} ID switches = {o['switches_per_1000']:.2f} per 1,000 face-frames ({o['face_frames']} face-frames "
              f"of {o['faces']} faces, {o['tracks']} tracks made); recall {o['recall']:.3f}, precision {o['precision']:.3f}; "
              f"{frames} frames in {wall:.1f} s: {frames / wall:.1f} frames/s, {faces / wall:.1f} faces/s", flush=True)
        for video, v in scores["videos"].items():
            print(f"  {Path(video).name}: IDF1 {v['idf1']:.3f}, MOTA {v['mota']:.3f}, HOTA {v['hota']:.3f}, {v['id_switches']} switches, "
                  f"{v['faces']} faces, {v['tracks']} tracks")
        if args.real:
            clips = [str(MEDIA / c) for c in CLIPS if (MEDIA / c).exists()]
            real, real_wall = run(clips, tmp / f"{name}-real.parquet", args, {**base, **extra}, predictor)
            run_report["real"] = real_summary(real)
            run_report["real_seconds"] = real_wall
            for clip, r in run_report["real"].items():
                print(f"  {clip}: face on {r['frames_with_face']} of {r['frames']} frames, at most {r['most_faces_in_a_frame']} "
                      f"faces a frame, {r['tracks']} tracks")
        report["runs"][name] = run_report
    if len(report["runs"]) > 1:
        rates = {n: r["frames_per_s"] for n, r in report["runs"].items()}
        print("frames/s: " + ", ".join(f"{n} {v:.1f}" for n, v in rates.items()))
        last, one = list(rates)[-1], list(rates.values())[-1]
        print(f"faces/s against {last}'s frames/s: " + ", ".join(f"{n} {r['faces_per_s'] / one:.2f}" for n, r in report["runs"].items() if n != last))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, default=lambda v: v.item() if isinstance(v, np.generic) else str(v)))


if __name__ == "__main__":
    main()
