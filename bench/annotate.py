"""Annotation speed and memory: auhm annotate against a per-frame reference loop and the bare model.

In one process, on the same video and checkpoint (the paper-size scratch model, untrained —
weights do not change speed):

  (a) ``auhm.infer.annotate`` (decode → dlib tracking + crops in a tracking process → batched
      model in single-threaded lanes); once on the clip, once on the clip given 4 times;
  (b) the predecessor's loop: detect the face in every frame (dlib HOG), fit landmarks, crop,
      one fp32 forward per frame;
  (c) the model alone on pre-cut crops at (a)'s batch size and precision, the faster of one
      forward on all threads and one single-threaded forward per thread side by side.

Prints frames/s and the ratios a/b and a/c, and where (a)'s time goes: (d) the tracking alone
(decode + dlib + crops in one process, the work of annotate's tracking process) in CPU ms per
frame, dlib's predictor load, and the a/c that the cores would allow if the model, the tracking
and the load shared them with no loss at all. With ``--rss``, also annotates ``--rss-minutes``
of video (the clip repeated through symlinks in a temp folder, never copied) and prints the
process RSS once one minute of video is written and at the end.

With ``--model-stub``, the network is replaced by a stand-in that costs nothing (fixed
intensities, and fixed landmarks that hold a self-tracked crop still), so what is measured is
the pipeline around the model: decoding, tracking, crops, batching and writing. Three paths, each
on ``--copies`` inputs in one call: true landmarks on synthetic 640×360 videos, self-tracking
(``--landmarks auto``, detection with dlib's HOG) on the clip, and dlib tracking on the clip.
Prints frames/s, the CPU ms a frame of the model's process and of the tracking workers, and
where the model's thread spends its time. That ceiling, times the cores, is what a GPU machine
can be fed.

    python bench/annotate.py [--video /work/shared/media/WolfgangLanger_Pexels.mp4] [--rss]
    python bench/annotate.py --model-stub [--workers 2] [--copies 4]
"""

from __future__ import annotations

import argparse
import atexit
import os
import resource
import shutil
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

from auhm.face.crop import CropConfig, crop_face
from auhm.face.dlib_backend import DlibBackend
from auhm.face.tracking import choose_detection
from auhm.infer.annotate import AnnotateConfig, annotate
from auhm.infer.chunks import track_and_crop
from auhm.infer.predictor import Predictor, StubPredictor, model_lanes
from auhm.models import build_model, save_checkpoint
from auhm.data.corpora import corpus_spec
from auhm.video import VideoReader

MEDIA = Path(__file__).resolve().parents[2] / "shared" / "media"


def rss_mib(pid: int | str = "self") -> float:
    """Resident memory of a process and all its children (annotate tracks in child processes)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            own = next(int(line.split()[1]) / 1024 for line in f if line.startswith("VmRSS:"))
        children = [c for task in Path(f"/proc/{pid}/task").iterdir() for c in (task / "children").read_text().split()]
    except (OSError, StopIteration):
        return 0.0
    return own + sum(rss_mib(c) for c in children)


def reference_loop(video: Path, ckpt: Path, limit: int | None) -> tuple[int, float]:
    """Per frame: full detection, landmarks, crop, one fp32 forward (no batching, no threads)."""
    predictor = Predictor.from_checkpoint(ckpt, "cpu", "fp32")
    backend = DlibBackend()
    n, t0 = 0, time.perf_counter()
    for _, _, frame in VideoReader(video).frames():
        if limit and n >= limit:
            break
        chosen = choose_detection(backend.detect(frame[None])[0])
        if chosen is not None:
            lms, _ = backend.fit(frame[None], chosen[0][None])
            crop, _ = crop_face(frame, lms[0].astype(np.float64), predictor.crop)
            predictor(crop[None])
        n += 1
    return n, time.perf_counter() - t0


def cpu_seconds() -> float:
    """CPU time of this process, all its threads."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def tracking_alone(video: Path, crop: CropConfig, batch: int) -> tuple[int, float, float]:
    """(frames, CPU s to load dlib's predictor, CPU s per frame) of annotate's tracking work —
    decode (one decoder thread, as annotate's workers), dlib tracking, crops — in this process."""
    from auhm.face import Tracker

    c0 = cpu_seconds()
    tracker = Tracker(DlibBackend())
    load = cpu_seconds() - c0
    tracker.start(str(video))
    c0, n = cpu_seconds(), 0
    for frames in VideoReader(video, num_threads=1).batches(max(batch, 8)):
        track_and_crop(frames, tracker, crop)
        n += len(frames)
    return n, load, (cpu_seconds() - c0) / n


def model_alone(ckpt: Path, crops: np.ndarray, batch: int, precision: str, lanes: int) -> float:
    """Frames/s of the bare model: one forward at a time on all threads (lanes 1), or ``lanes``
    single-threaded forwards side by side, as annotate runs them on a CPU."""
    predictor = Predictor.from_checkpoint(ckpt, "cpu", precision)
    chunks = [crops[i : i + batch] for i in range(0, len(crops), batch)]
    threads = torch.get_num_threads()
    if lanes > 1:
        torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(lanes) as pool:
            list(pool.map(predictor, chunks[:lanes]))  # warm-up (oneDNN primitive creation)
            t0 = time.perf_counter()
            list(pool.map(predictor, chunks))
            return len(crops) / (time.perf_counter() - t0)
    finally:
        torch.set_num_threads(threads)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--video", type=Path, default=MEDIA / "WolfgangLanger_Pexels.mp4")
    ap.add_argument("--batch-size", type=int, default=8, help="8: the fastest batch on small CPUs (see annotate.default_batch_size)")
    ap.add_argument("--precision", default="auto")
    ap.add_argument("--workers", type=int, default=None, help="tracking workers (default: annotate's)")
    ap.add_argument("--reference-frames", type=int, default=120, help="frames for the slow loop (b)")
    ap.add_argument("--rss", action="store_true", help="also measure RSS over --rss-minutes of video")
    ap.add_argument("--rss-minutes", type=float, default=10.0)
    ap.add_argument("--rss-every", type=int, default=1, help="annotate every k-th frame in the RSS run (all are decoded)")
    ap.add_argument("--only-rss", action="store_true", help="skip (a), (b), (c)")
    ap.add_argument("--corpus-copies", type=int, default=4, help="(a) again on the clip given this many times (symlinks) in one call")
    ap.add_argument("--repeats", type=int, default=3, help="alternating rounds of (a), (a×k) and (c); medians reported")
    ap.add_argument("--model-stub", action="store_true", help="the pipeline's ceiling: a stand-in network that costs nothing")
    ap.add_argument("--copies", type=int, default=4, help="--model-stub: inputs per path (the clip as symlinks; synthetic videos)")
    ap.add_argument("--synth-frames", type=int, default=300, help="--model-stub: frames of each synthetic video")
    ap.add_argument("--paths", nargs="+", default=["truth", "auto", "dlib"], help="--model-stub: which paths to run")
    ap.add_argument("--faces", default=None, help="--model-stub: annotate --faces (all or largest; default: annotate's)")
    args = ap.parse_args()
    if not args.video.exists():
        raise SystemExit(f"{args.video}: not found (the benchmark needs ../shared/media)")

    tmp = Path(tempfile.mkdtemp(prefix="auhm-bench-"))
    atexit.register(shutil.rmtree, tmp, True)  # the checkpoint, corpus and tables made here
    if args.model_stub:
        return stub_run(args, tmp)
    ckpt = save_checkpoint(tmp / "scratch.pt", build_model("scratch", corpus_spec("disfa").aus, preset="paper"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; video {args.video.name}")

    if args.only_rss:
        return rss_run(args, ckpt, tmp)
    def run_a(videos: list[str], out: Path) -> tuple[int, float]:
        cfg = AnnotateConfig(model=ckpt, out=out, landmarks="dlib", batch_size=args.batch_size, device="cpu",
                             precision=args.precision, workers=args.workers, quiet=True)
        t0 = time.perf_counter()
        res = annotate(videos, cfg)
        return res.frames, res.frames / (time.perf_counter() - t0)

    predictor = Predictor.from_checkpoint(ckpt, "cpu", args.precision)
    precision = predictor.precision
    n, dt = reference_loop(args.video, ckpt, args.reference_frames)
    b_fps = n / dt
    crops = np.stack([f for f in _crops(args.video, ckpt, 256)])
    clips = _loop_links(args.video, tmp / "corpus", args.corpus_copies)
    lanes = model_lanes(torch.device("cpu"))
    # (a), (a×k) and (c) alternate, --repeats times: a shared machine's drift then moves all
    # three alike, and the medians carry the ratios
    runs: dict[str, list[float]] = {"a": [], "ak": [], "c": [], "c1": []}
    for r in range(args.repeats):
        frames, fps = run_a([str(args.video)], tmp / f"a{r}.parquet")
        runs["a"].append(fps)
        frames_k, fps = run_a(clips, tmp / f"corpus{r}.parquet")
        runs["ak"].append(fps)
        runs["c1"].append(model_alone(ckpt, crops, args.batch_size, args.precision, 1))
        runs["c"].append(max(runs["c1"][-1], model_alone(ckpt, crops, args.batch_size, args.precision, lanes) if lanes > 1 else 0.0))

    def show(key: str) -> str:
        v = runs[key]
        return f"{np.median(v):7.1f} frames/s  (median of {len(v)}: " + ", ".join(f"{x:.1f}" for x in v) + ")"

    a_fps, ak_fps, c_fps = (float(np.median(runs[k])) for k in ("a", "ak", "c"))
    k = args.corpus_copies
    print(f"(a) auhm annotate, the clip                 {show('a')}; {frames} frames, batch {args.batch_size}, {precision}, whole call incl. model load")
    print(f"(a×{k}) the clip as {k} inputs in one call     {show('ak')}; {frames_k} frames, the start-up paid once")
    print(f"(b) per-frame loop                          {b_fps:7.1f} frames/s  ({n} frames, detect every frame, fp32, batch 1)")
    print(f"(c) model alone, pre-cut crops              {show('c')}; {len(crops)} crops, batch {args.batch_size}, {precision}, the faster of "
          f"{lanes} single-threaded forwards side by side and one forward on {torch.get_num_threads()} threads (median {np.median(runs['c1']):.1f})")
    print(f"a/b = {a_fps / b_fps:.2f}   a/c = {a_fps / c_fps:.2f}   (a×{k})/c = {ak_fps / c_fps:.2f}")

    # Where (a)'s time goes: per frame, the model costs cores/c CPU-seconds (as in (c)) and the
    # tracking T; once per call, dlib's load L. Were the cores shared with no loss at all, the
    # clip would take (n·(model + T) + L) / cores seconds: the best a/c this machine allows.
    n_track, load, track_cpu = tracking_alone(args.video, predictor.crop, args.batch_size)
    cores = lanes if lanes > 1 else torch.get_num_threads()
    model_cpu = cores / c_fps
    steady = model_cpu / (model_cpu + track_cpu)
    clip = frames / ((frames * (model_cpu + track_cpu) + load) / cores) / c_fps
    print(f"(d) tracking alone (decode + dlib + crops)  {1000 * track_cpu:7.2f} CPU ms/frame ({n_track} frames); dlib predictor load {load:.2f} CPU s; "
          f"model {1000 * model_cpu:.2f} CPU ms/frame ({cores} cores / c)")
    print(f"a/c if the {cores} cores were shared with no loss: {steady:.2f} for a long corpus, {clip:.2f} for this clip with the load "
          f"(measured: {ak_fps / c_fps:.2f} and {a_fps / c_fps:.2f})")

    if args.rss:
        rss_run(args, ckpt, tmp)


def _crops(video: Path, ckpt: Path, limit: int):
    """Face crops cut once from the video (dlib landmarks), for the model-alone figure."""
    predictor = Predictor.from_checkpoint(ckpt, "cpu", "fp32")
    from auhm.face import Tracker

    tracker = Tracker(DlibBackend())
    tracker.start(str(video))
    n = 0
    for batch in VideoReader(video).batches(32):
        track = tracker.update(batch)
        for frame, ok, lms in zip(batch.frames, track.success, track.landmarks):
            if ok and n < limit:
                n += 1
                yield crop_face(frame, lms.astype(np.float64), predictor.crop)[0]
        if n >= limit:
            return


def _loop_links(video: Path, folder: Path, copies: int) -> list[str]:
    """The clip ``copies`` times over, as symlinks (never copies of the file)."""
    folder.mkdir(parents=True, exist_ok=True)
    links = []
    for i in range(copies):
        link = folder / f"clip{i:03d}{video.suffix}"
        link.symlink_to(video.resolve())
        links.append(str(link))
    return links


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def stub_run(args, tmp: Path) -> None:
    """The pipeline's ceiling on each path, with the stand-in network (see the module doc)."""
    from auhm.synth import SynthConfig, make_corpus
    from auhm.data.corpora import corpus_spec

    workers = args.workers or 2
    aus = corpus_spec("disfa").aus
    placeholder = tmp / "stub.pt"
    placeholder.write_bytes(b"stand-in network: nothing to load")
    inputs = {}
    if "truth" in args.paths:
        make_corpus(SynthConfig(tmp / "synth", subjects=args.copies, frames=args.synth_frames, width=640, height=360, seed=0,
                                contact_sheet=False), quiet=True)
        inputs["truth"] = sorted(str(p) for p in (tmp / "synth" / "Videos_LeftCamera").glob("*.avi"))
    clips = _loop_links(args.video, tmp / "clips", args.copies)
    inputs["auto"] = inputs["dlib"] = clips
    print(f"--model-stub: {workers} tracking workers, batch {args.batch_size}, {os.cpu_count()} CPUs; "
          f"truth: {args.copies} synthetic 640×360 videos × {args.synth_frames} frames; auto, dlib: {args.video.name} × {args.copies}")
    for path in args.paths:
        stub = StubPredictor(aus, input_size=256, landmarks=path == "auto")
        cfg = AnnotateConfig(model=placeholder, out=tmp / f"{path}.parquet", landmarks=path, batch_size=args.batch_size,
                             device="cpu", workers=workers, quiet=True, overwrite=True)
        if args.faces:
            cfg.faces = args.faces
        own, kids, t0 = cpu_seconds(), children_cpu(), time.perf_counter()
        res = annotate(inputs[path], cfg, predictor=stub)
        wall = time.perf_counter() - t0
        own, kids = cpu_seconds() - own, children_cpu() - kids
        n = res.frames
        stages = ", ".join(f"{k} {1000 * v / n:.3f}" for k, v in sorted(res.stages.items(), key=lambda kv: -kv[1]))
        print(f"{path:5s} {n / wall:7.1f} frames/s ({n} frames, {wall:.1f} s, {len(res.fallbacks)} fallbacks); CPU ms a frame: "
              f"model's process {1000 * own / n:.3f}, tracking workers {1000 * kids / n:.3f}; ceiling with the cores busy "
              f"{n / (own + kids) * (os.cpu_count() or 1):.0f} frames/s; model's thread, wall ms a frame: {stages}")
    for name, video in {"synthetic video": inputs.get("truth", [None])[0], args.video.name: clips[0]}.items():
        if video is not None:
            print(f"decoding alone, {name}: {decode_cpu_ms(video):.3f} CPU ms a frame (1 thread)")


def decode_cpu_ms(video: str) -> float:
    """CPU ms a frame to decode ``video`` alone, one thread, as a tracking worker reads it."""
    c0, n = cpu_seconds(), 0
    for frames in VideoReader(video, num_threads=1).batches(32):
        n += len(frames)
    return 1000 * (cpu_seconds() - c0) / max(n, 1)


def rss_run(args, ckpt: Path, tmp: Path) -> None:
    info = VideoReader(args.video).info
    per_clip_s = info.frames_claimed / info.fps
    copies = int(np.ceil(args.rss_minutes * 60 / per_clip_s))
    links = _loop_links(args.video, tmp / "loop", copies)
    out = tmp / "rss"
    one_minute = int(np.ceil(60 / per_clip_s))  # clips in a minute of video
    first, last = [], []  # RSS samples while the first / the last minute of video is annotated
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            written = len(list(out.glob("clip*.parquet"))) if out.exists() else 0
            if written < one_minute:
                first.append(rss_mib())
            elif written >= copies - one_minute:
                last.append(rss_mib())
            time.sleep(0.2)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    cfg = AnnotateConfig(model=ckpt, out=out, per_video=True, landmarks="dlib", batch_size=args.batch_size, device="cpu",
                         precision=args.precision, workers=args.workers, every=args.rss_every, quiet=True)
    t0 = time.perf_counter()
    res = annotate(links, cfg)
    done.set()
    th.join()
    minutes = len(res.written) * per_clip_s / 60
    print(f"RSS over {copies} × {args.video.name} = {minutes:.1f} min of video ({res.frames} frames annotated, every "
          f"{args.rss_every}, {time.perf_counter() - t0:.0f} s): peak while annotating the first minute {max(first):.0f} MiB, "
          f"the last minute {max(last):.0f} MiB (ratio {max(last) / max(first):.2f})")


if __name__ == "__main__":
    main()
