"""Streaming, batched, resumable AU annotation of video corpora: ``auhm annotate``.

Three stages run at once, joined by bounded queues so memory stays flat whatever the video
length: decode + face tracking + cropping in ``workers`` workers (one video each: forked
processes for dlib and truth landmarks, threads for the torch backends; :mod:`.workers`), and
the AU model fed from the calling thread (:mod:`.engine`, :mod:`.predictor`). Tracking with the
AU model's own backbone landmarks is :mod:`.self_tracking`.

Every decoded frame gets exactly one row; frames without a face get ``success = false`` and
null AUs. Each video's table is written as it goes and renamed into place only when the video is
complete, so a killed run leaves only whole videos behind and a re-run skips them (:mod:`.output`).
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

from auhm.console import console, progress
from auhm.errors import InputFailure, UsageError
from auhm.infer.engine import Engine
from auhm.infer.output import VideoJob, file_sha256, is_done, merge_parts, output_names, whole_file_done
from auhm.infer.predictor import Predictor
from auhm.infer.sources import face_source

ENGINES = ("local", "ray")


@dataclass
class AnnotateConfig:
    model: Path
    out: Path = Path("predictions.parquet")
    landmarks: str = "auto"  # auto, auhm, dlib, fan or truth
    landmark_model: Path | None = None
    per_video: bool = False
    batch_size: int | None = None  # None: default_batch_size(device)
    device: str = "auto"
    precision: str = "auto"
    workers: int | None = None  # decode + tracking workers (local: processes or threads) or actors (ray); None: tracking_workers()
    every: int = 1
    overwrite: bool = False
    engine: str = "local"
    quiet: bool = False
    refine_drift: float = 0.10  # self-tracking: re-cut when the face moved more than this × crop side
    min_landmark_confidence: float | None = None  # self-tracking: below it the face is lost (None: the backbone's calibrated threshold, else 0.25)
    redetect_every: int = 10  # frames to wait after a failed search before searching again

    def check(self) -> None:
        if (self.batch_size is not None and self.batch_size < 1) or (self.workers is not None and self.workers < 1) or self.every < 1:
            raise UsageError("--batch-size, --workers and --every must be at least 1")
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: choose one of {', '.join(ENGINES)}")
        if not Path(self.model).is_file():
            raise UsageError(f"--model {self.model}: no such checkpoint")
        if self.per_video and Path(self.out).suffix.lower() == ".parquet":
            raise UsageError(f"--per-video writes a directory; --out {self.out} looks like a file")
        if not self.per_video and Path(self.out).is_dir():
            raise UsageError(f"--out {self.out} is a directory: add --per-video, or name a .parquet file")


@dataclass
class AnnotateResult:
    out: Path
    landmark_backend: str
    written: list[str] = field(default_factory=list)  # videos annotated in this run
    skipped: list[str] = field(default_factory=list)  # already done with the same checkpoint
    failures: list[InputFailure] = field(default_factory=list)
    notes: list[InputFailure] = field(default_factory=list)  # videos annotated otherwise than asked, and why
    stages: dict[str, float] = field(default_factory=dict)  # seconds of the model's thread per stage (local engine)
    frames: int = 0  # rows written in this run


def _count_frames(jobs: Sequence[VideoJob], bar, task, over: threading.Event) -> None:
    """Set the progress total to the frames the containers claim (a PyAV open each: ~40 ms here)."""
    total = 0
    for k, job in enumerate(jobs, 1):
        if over.is_set():
            return
        total += _claimed_frames(job.video)
        if k % 100 == 0 or k == len(jobs):
            bar.update(task, total=total or None)


def _claimed_frames(video: str) -> int:
    try:
        import av

        with av.open(video) as c:
            return int(c.streams.video[0].frames or 0)
    except Exception:
        return 0


# ── entry point ─────────────────────────────────────────────────────────────────────────────
def expand_videos(patterns: Iterable[str]) -> list[str]:
    from auhm.face.extract import expand_inputs

    return [str(p) for p in expand_inputs(list(patterns))]


def annotate(videos: Sequence[str], config: AnnotateConfig, predictor: Predictor | None = None) -> AnnotateResult:
    """Annotate videos (paths, globs or @list.txt) with per-frame AU intensities; see the module doc.

    ``predictor``: a model already loaded (the stand-in of ``bench/annotate.py --model-stub``);
    by default ``config.model`` is loaded."""
    config.check()
    paths = expand_videos(videos)
    if not paths:
        raise UsageError("no videos matched the given paths")
    checkpoint = file_sha256(config.model)
    if predictor is None:
        try:
            predictor = Predictor.from_checkpoint(config.model, config.device, config.precision)
        except ValueError as e:  # unreadable or foreign checkpoint
            raise UsageError(str(e)) from None
    source = face_source(config, predictor)
    if not config.quiet:
        console.print(
            f"annotate: {len(paths)} video(s), {predictor.method} on {predictor.device} ({predictor.precision}), "
            f"landmarks: {source.name}"
        )
    meta = {
        "checkpoint": checkpoint,
        "checkpoint_path": str(config.model),
        "aus": list(predictor.aus),
        "method": predictor.method,
        "landmark_backend": source.name,
        "every": config.every,
    }
    out = Path(config.out)
    folder = out if config.per_video else out.with_name(out.name + ".parts")
    jobs = [VideoJob(v, folder / n) for v, n in zip(paths, output_names(paths))]
    result = AnnotateResult(out, source.name)

    if not config.per_video and out.exists() and not config.overwrite and whole_file_done(out, paths, meta):
        result.skipped = list(paths)
        return result
    todo = []
    for job in jobs:
        if not config.overwrite and is_done(job.dest, job.video, meta):
            result.skipped.append(job.video)
        else:
            todo.append(job)
    if result.skipped and not config.quiet:
        console.print(f"annotate: {len(result.skipped)} video(s) already done with this checkpoint, skipped")

    with progress(config.quiet) as bar:
        task = bar.add_task("annotate", total=None, unit="frames")
        advance = lambda n: bar.advance(task, n)  # noqa: E731

        counted = threading.Event()  # set when the work is over: the count stops there
        counter = threading.Thread(target=_count_frames, args=(todo, bar, task, counted), name="auhm-count", daemon=True)

        def count_frames() -> None:  # the total opens every container: counted beside the work, not before it
            if not config.quiet:
                counter.start()

        if config.engine == "ray":
            from auhm.infer.ray_engine import run_jobs_ray

            count_frames()
            written, failures, rows = run_jobs_ray(todo, config, meta, advance)
        else:
            engine = Engine(todo, predictor, source, meta, config, advance)
            written, failures, rows = engine.run(after_start=count_frames)
            result.notes, result.stages = engine.notes, engine.clock.seconds
        counted.set()
        if counter.is_alive():
            counter.join()  # at most one more container open
        bar.update(task, total=bar.tasks[task].completed)  # the decoded frames, not what the containers claimed
    result.written, result.failures, result.frames = written, failures, rows
    for note in result.notes:  # said whatever --quiet: the video was annotated otherwise than asked
        console.print(f"annotate: warning: {note}", highlight=False, soft_wrap=True)

    if not config.per_video:
        done = set(result.skipped) | set(written)
        merge_parts([j for j in jobs if j.video in done], out, predictor.aus, meta)
        if not failures:
            shutil.rmtree(folder, ignore_errors=True)
    return result
