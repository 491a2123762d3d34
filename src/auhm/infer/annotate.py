"""Streaming, batched, resumable AU annotation of video corpora: ``auhm annotate``.

Three stages run at once, joined by bounded queues so memory stays flat whatever the video
length: decode + face tracking + cropping in ``workers`` workers (one video each: forked
processes for dlib and truth landmarks, threads for the torch backends; :mod:`.workers`), and
the AU model fed from the calling thread (:mod:`.engine`, :mod:`.predictor`). Tracking with the
AU model's own backbone landmarks is :mod:`.backbone`; every face of a frame is followed with an id of its own
(:mod:`auhm.face.multitrack`), or only the largest (``--faces largest``).

Every decoded frame gets exactly one row; frames without a face get ``success = false`` and
null AUs. Each video's table is written as it goes and renamed into place only when the video is
complete, so a killed run leaves only whole videos behind and a re-run skips them (:mod:`.output`).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from auhm.console import console, progress
from auhm.errors import InputFailure, Interrupted, UsageError
from auhm.face.tracking import FACE_FOLLOWED
from auhm.infer.engine import Engine
from auhm.infer.output import Plan, VideoJob, done_part, merge_output, output_lock, output_names, plan_jobs
from auhm.infer.predictor import Predictor
from auhm.infer.sources import FACES, check_detector, face_source, tracking_config
from auhm.io import check_writable, file_sha256
from auhm.landmarks import backend_name, backend_names, check_backend
from auhm.video.inputs import expand_inputs, nothing_matched

ENGINES = ("local", "ray")


@dataclass
class AnnotateConfig:
    model: Path
    out: Path = Path("predictions.parquet")
    landmarks: str = "auto"  # auto, or a landmark backend: dlib, fan, network or truth
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
    min_landmark_confidence: float | None = None  # self-tracking: below it the face is lost (None: the backbone's calibrated threshold)
    faces: str = "all"  # every face with its track id, or the largest one only
    detect_every: int = 16  # decoded frames between full-frame detections (new faces are found within it; half among several faces)
    max_gap: float = 1.0  # seconds a face may be missing and keep its id
    min_face: int | None = None  # smallest face side to find, in frame pixels (None: the detector's default)
    detector: str | None = None  # full-frame detector of the self-tracking path (None: the first installed, by preference)

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError."""
        if (self.batch_size is not None and self.batch_size < 1) or (self.workers is not None and self.workers < 1) or self.every < 1:
            raise UsageError("--batch-size, --workers and --every must be at least 1")
        if self.faces not in FACES:
            raise UsageError(f"--faces {self.faces}: choose one of {', '.join(FACES)}")
        if self.detect_every < 1 or (self.min_face is not None and self.min_face < 1):
            raise UsageError("--detect-every and --min-face must be at least 1")
        if not (0 <= self.max_gap < 1e6) or not (0 < self.refine_drift < 10):
            raise UsageError("--max-gap must be 0 or more seconds, and the refine drift a positive fraction")
        if self.min_landmark_confidence is not None and not (0 <= self.min_landmark_confidence <= 1):
            raise UsageError("--min-landmark-confidence must lie in 0–1")
        if self.detector is not None:
            check_detector(self.detector, self.landmarks)
        if self.engine not in ENGINES:
            raise UsageError(f"--engine {self.engine}: choose one of {', '.join(ENGINES)}")
        if self.landmarks != "auto":
            if backend_name(self.landmarks) not in backend_names():
                raise UsageError(f"--landmarks {self.landmarks}: choose one of auto, {', '.join(backend_names())}")
            check_backend(self.landmarks, self.landmark_model)
        if self.landmark_model is not None and not Path(self.landmark_model).is_file():
            raise UsageError(f"--landmark-model {self.landmark_model}: no such checkpoint")
        if not Path(self.model).is_file():
            raise UsageError(f"--model {self.model}: no such checkpoint")
        if self.per_video and Path(self.out).suffix.lower() == ".parquet":
            raise UsageError(f"--per-video writes a directory; --out {self.out} looks like a file")
        if not self.per_video and Path(self.out).is_dir():
            raise UsageError(f"--out {self.out} is a directory: add --per-video, or name a .parquet file")
        check_writable(self.out, directory=self.per_video)


@dataclass
class AnnotateResult:
    out: Path
    landmark_backend: str
    written: list[str] = field(default_factory=list)  # videos annotated in this run
    skipped: list[str] = field(default_factory=list)  # already done the same way
    failures: list[InputFailure] = field(default_factory=list)  # inputs with no rows
    incomplete: list[InputFailure] = field(default_factory=list)  # videos whose rows stop short of their end (kept)
    faces_seen: dict[str, int] = field(default_factory=dict)  # the most faces one detection found, per video
    no_face: dict[str, dict] = field(default_factory=dict)  # videos with frames without a face: {frames, frames_without_face, longest_gap}
    rejected: list[InputFailure] = field(default_factory=list)  # self-tracked videos where the model's landmarks rejected faces the detector saw
    fallbacks: list[InputFailure] = field(default_factory=list)  # self-tracked videos that went on with another tracker, and why
    stages: dict[str, float] = field(default_factory=dict)  # seconds of the model's thread per stage (local engine)
    frames: int = 0  # rows written in this run
    videos_held: int = 0  # videos the output holds after the run
    merge_note: str | None = None  # why a single output file was left as it was, when it was


def _count_frames(jobs: Sequence[VideoJob], bar, task, over: threading.Event) -> None:
    """Set the progress total to the frames the containers claim (opening every container takes a while: done beside the work)."""
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
def annotate(videos: Sequence[str], config: AnnotateConfig, predictor: Predictor | None = None) -> AnnotateResult:
    """Annotate videos (paths, folders, globs or @list.txt) with per-frame AU intensities; see the module doc.

    ``predictor``: a model already loaded (the stand-in of ``bench/annotate.py --model-stub``);
    by default ``config.model`` is loaded."""
    config.check()
    unmatched: list[InputFailure] = []
    paths = expand_inputs(list(videos), unmatched)
    if not paths:
        raise nothing_matched(unmatched)
    if predictor is None:
        try:
            predictor = Predictor.from_checkpoint(config.model, config.device, config.precision)
        except ValueError as e:  # unreadable or foreign checkpoint, or a device this machine lacks
            raise UsageError(str(e)) from None
    for warning in _learning_warnings(config, predictor):  # said whatever --quiet: results to distrust
        console.print(f"annotate: warning: {warning}", markup=False, highlight=False, soft_wrap=True)
    source = face_source(config, predictor)
    meta = {
        "checkpoint": file_sha256(config.model),
        "checkpoint_path": str(config.model),
        "aus": list(predictor.aus),
        "method": predictor.method,
        "landmark_backend": source.name,
        "landmark_model": file_sha256(config.landmark_model) if config.landmark_model and _uses_landmark_model(source) else None,
        "every": config.every,
        "faces": config.faces,
        "tracking": _tracking_key(config),
        "face_followed": FACE_FOLLOWED if config.faces == "largest" else FACES_FOLLOWED,
    }
    out = Path(config.out)
    folder = out if config.per_video else out.with_name(out.name + ".parts")
    jobs = [VideoJob(v, folder / n) for v, n in zip(paths, output_names(paths))]
    say = lambda text: console.print(text, markup=False, highlight=False, soft_wrap=True)  # noqa: E731
    with output_lock(out, say):
        plan = plan_jobs(jobs, meta, out, config.per_video, config.overwrite)
        if plan.todo and config.engine == "local":
            source.preload()  # a backend that cannot load stops here, before any line of progress
        if not config.quiet:
            say(f"annotate: {len(paths)} video(s), {predictor.method} on {predictor.device} ({predictor.precision}), "
                f"landmarks: {source.name}")
            if plan.skipped:
                say(f"annotate: {len(plan.skipped)} video(s) already done the same way, skipped")
            for differs, redone in plan.redone.items():
                say(f"annotate: redoing {len(redone)} video(s) made with other settings ({differs})")
        existed = out.exists()
        try:
            written, failures, rows, extra = _run(plan.todo, predictor, source, meta, config) if plan.todo else ([], [], 0, {})
        except KeyboardInterrupt:  # Ctrl-C or SIGTERM: the workers are stopped; say what is kept
            done = [job.video for job in plan.todo if done_part(job.dest, job.video, meta)[0] is not None]
            where = str(out) if config.per_video else f"{folder} (merged into {out} by the next run)"
            raise Interrupted(f"annotate: interrupted; {len(done)} of {len(plan.todo)} video(s) finished and kept in {where}; "
                              "run the same command again to resume (finished videos are skipped)") from None
        result = AnnotateResult(out, source.name, written, plan.skipped, unmatched + failures, frames=rows, **extra)
        notes = _notes(plan, written, meta)
        _report_notes(result, notes)
        if config.per_video:
            result.videos_held = sum(1 for p in out.glob("*.parquet") if not p.name.startswith(".")) if out.is_dir() else 0
            if not existed and out.is_dir() and not any(out.iterdir()):
                out.rmdir()  # every video failed: nothing written, not even a folder
        else:
            _finish_single_file(result, plan, jobs, folder, predictor.aus, meta, notes)
    return result


FACES_FOLLOWED = "every face found, each with a track id that holds through short gaps (--faces all)"


def _uses_landmark_model(source) -> bool:
    """The landmark network of --landmark-model takes part: it tracks, searches, or is the fallback."""
    return "network" in source.name.split("+") or source.self_tracking


def _tracking_key(config: AnnotateConfig) -> str:
    """The tracking settings that change rows, in the metadata (and so in the resume key): the
    options, and a fingerprint of the tracker's rules and the detectors' candidate settings, so
    that a table begun under other rules (an older auhm) is redone, not continued."""
    from auhm.face.detectors import candidate_settings

    t = tracking_config(config)
    rules = hashlib.sha1(f"{t!r} {candidate_settings()!r}".encode()).hexdigest()[:8]
    return f"detect_every={t.detect_every} max_gap={config.max_gap:g}s min_face={config.min_face or 'default'} rules={rules}"


def _learning_warnings(config: AnnotateConfig, predictor: Predictor) -> list[str]:
    """What the checkpoints' own validation says when a model learned nothing (its predictions are noise)."""
    from auhm.models.checkpoint import learning_warning, read_checkpoint_info

    found = [(config.model, predictor.info)]
    if config.landmark_model:
        try:
            found.append((config.landmark_model, read_checkpoint_info(config.landmark_model)))
        except (ValueError, FileNotFoundError):
            pass  # the landmark backend reports an unusable checkpoint itself
    return [f"{path}: {w}" for path, info in found if (w := learning_warning(info))]


def _notes(plan: Plan, written: Sequence[str], meta: dict) -> dict[str, dict]:
    """Each video's notes (faces seen, a shortfall of frames): from the output file it sits in,
    the part an earlier run left, or the part this run wrote."""
    notes = {v: plan.held.notes(v) for v in plan.keep} if plan.held else {}
    notes |= plan.notes
    done = set(written)
    return notes | {job.video: done_part(job.dest, job.video, meta)[0] or {} for job in plan.todo if job.video in done}


def _finish_single_file(result: AnnotateResult, plan: Plan, jobs: Sequence[VideoJob], folder: Path, aus, meta: dict,
                        notes: dict[str, dict]) -> None:
    """Merge into the single output file and remove the parts, unless that would lose a video it held."""
    out = result.out
    done = set(plan.skipped) | set(result.written)
    merged = merge_output(plan, jobs, done, out, aus, meta, notes)
    held = set(plan.held.videos) if plan.held else set()
    lost = held - set(plan.keep) - done
    if lost:
        result.merge_note = (f"{out} left as it was: {len(lost)} of its videos could not be redone; the videos "
                             f"annotated wait in {folder} for a re-run")
    else:
        shutil.rmtree(folder, ignore_errors=True)
    result.videos_held = len(set(plan.keep) | done) if merged else len(held)


def _run(todo: Sequence[VideoJob], predictor: Predictor, source, meta: dict, config: AnnotateConfig) -> tuple[list[str], list[InputFailure], int, dict]:
    """The videos to annotate through the chosen engine, under a progress bar: (written, failures,
    rows, the local engine's fallbacks and stages)."""
    with progress(config.quiet) as bar:
        task = bar.add_task("annotate", total=None, unit="frames")
        advance = lambda n: bar.advance(task, n)  # noqa: E731

        counted = threading.Event()  # set when the work is over: the count stops there
        counter = threading.Thread(target=_count_frames, args=(todo, bar, task, counted), name="auhm-count", daemon=True)

        def count_frames() -> None:  # the total opens every container: counted beside the work, not before it
            if not config.quiet:
                counter.start()

        extra = {"fallbacks": [], "stages": {}}
        if config.engine == "ray":
            from auhm.infer.ray_engine import run_jobs_ray

            count_frames()
            written, failures, rows = run_jobs_ray(todo, config, meta, advance)
        else:
            engine = Engine(todo, predictor, source, meta, config, advance)
            written, failures, rows = engine.run(after_start=count_frames)
            extra = {"fallbacks": engine.fallbacks, "stages": engine.clock.seconds}
        counted.set()
        if counter.is_alive():
            counter.join()  # at most one more container open
        bar.update(task, total=bar.tasks[task].completed)  # the decoded frames, not what the containers claimed
    for note in extra["fallbacks"]:  # said whatever --quiet: the video was annotated otherwise than asked
        console.print(f"annotate: warning: {note}", markup=False, highlight=False, soft_wrap=True)
    return written, failures, rows, extra


def _report_notes(result: AnnotateResult, notes: dict[str, dict]) -> None:
    """What the videos' notes say that the summary must: several faces, frames missing at the end."""
    for video in result.written + result.skipped:
        note = notes.get(video) or {}
        if note.get("faces_seen") is not None:
            result.faces_seen[video] = int(note["faces_seen"])
        if note.get("frames_without_face"):
            result.no_face[video] = {k: int(note[k]) for k in ("frames", "frames_without_face", "longest_gap") if k in note}
        if note.get("faces_rejected") and note.get("frames_without_face"):
            result.rejected.append(InputFailure(video, f"the model's landmarks rejected {note['faces_rejected']} face(s) the detector "
                                                       f"found, and {note['frames_without_face']} frame(s) have no face; "
                                                       "--landmarks dlib (or a landmark network trained on real faces) may find them"))
        if note.get("incomplete"):
            earlier = "" if video in result.written else ", from an earlier run"
            result.incomplete.append(InputFailure(video, f"incomplete, {note['incomplete']} (the frames decoded are kept{earlier})"))
