"""The ``auhm`` command line: thin Typer commands over the package's modules.

Exit codes: 0 success, 1 some inputs failed (the rest processed and written) or a run failed (training diverged), 2 usage error,
3 internal error (a bug: one line naming a log file with the traceback; ``auhm --debug`` prints it).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape
from rich.text import Text

from auhm import __version__
from auhm.cli_help import HelpCommand, HelpGroup
from auhm.console import console
from auhm.errors import InputFailure, Interrupted, RunFailed, UsageError


class AuhmGroup(HelpGroup):
    """The top-level group, where every failure becomes its exit code, once for all commands: a
    usage error 2, a run that failed (training diverged) 1, and anything else a bug, said in one
    line (the traceback in a log file, or on screen with ``--debug``) with exit code 3."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, typer.TyperException):
            raise
        except UsageError as e:
            _line("usage error", "red", str(e))
            raise typer.Exit(2) from None
        except RunFailed as e:
            _line("error", "red", str(e))
            raise typer.Exit(1) from None
        except Exception as e:  # a bug: whatever the user gave, auhm should not have raised this
            _internal_error(e, debug=bool((ctx.obj or {}).get("debug")))


def _line(label: str, style: str, text: str) -> None:
    """One line on stderr: ``label`` in ``style``, then ``text`` exactly as given (no markup, no
    emoji codes such as the ``:-1:`` of ``cuda:-1:``, no highlighting), never wrapped inside a path."""
    console.print(Text.assemble((label, style), " ", text), highlight=False, soft_wrap=True)


def _internal_error(e: Exception, debug: bool) -> None:
    """Say a bug in one line and exit 3; called while ``e`` is being handled (its traceback is at hand)."""
    first = str(e).strip().splitlines()[0] if str(e).strip() else ""
    what = f"{type(e).__name__}: {first}" if first else type(e).__name__
    if debug:
        console.print_exception()
        _line("internal error", "red", what)
        raise typer.Exit(3)
    log = Path(tempfile.gettempdir()) / f"auhm-error-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
    try:
        log.write_text(f"auhm {__version__}\ncommand: {' '.join(sys.argv)}\n\n{traceback.format_exc()}")
        where = f"the traceback is in {log}"
    except OSError:
        where = "the traceback could not be written to a log file"
    _line("internal error", "red", f"{what} (a bug in auhm; {where}; run auhm --debug … to print it)")
    raise typer.Exit(3)


app = typer.Typer(
    name="auhm",
    cls=AuhmGroup,
    help="""Facial Action Unit intensities, frame by frame, by heatmap regression (Ntinou et al. 2020).

    Annotate videos, then score them against labels:

    [bold]auhm annotate 'videos/*.mp4' --model best.pt --out predictions.parquet[/bold]

    [bold]auhm score predictions.parquet --labels labels.parquet[/bold]

    Train a model (here on a synthetic corpus): [bold]auhm synth data[/bold], [bold]auhm prepare synth data --out work[/bold],
    [bold]auhm train work --out runs/a[/bold].

    Exit codes: 0 done, 1 some inputs failed (the others are written)
    or training diverged, 2 usage error, 3 internal error (a bug: the message
    names a log file with the traceback; [bold]auhm --debug COMMAND …[/bold] prints it instead).
    """,
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def command(**kwargs):
    """``app.command`` with auhm's help layout."""
    return app.command(cls=HelpCommand, **kwargs)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auhm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    ctx: typer.Context,
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
    debug: bool = typer.Option(False, "--debug", help="On an internal error, print the traceback (instead of writing it to a log file)."),
) -> None:
    """auhm: annotate video corpora with AU intensities; prepare corpora, train every method of the paper, score with ICC(3,1)."""
    ctx.obj = {"debug": debug}


def _say(text: str) -> None:
    """One line on stderr, as written: no markup, no emoji codes, no highlighting, never wrapped inside a path."""
    console.print(Text(text), highlight=False, soft_wrap=True)


def _warn(text: str) -> None:
    """One warning line on stderr (a result to distrust), never wrapped inside a path."""
    _line("warning", "yellow", text)


def _say_faces(faces_seen: dict[str, int], largest: bool = True) -> None:
    """Name the videos where a detection saw several faces, when only the largest was followed."""
    for video, faces in faces_seen.items():
        if largest and faces > 1:
            _say(f"{video}: {faces} faces seen; one row per frame, for the largest (followed from frame to frame; --faces all follows every one)")


def _say_no_face(no_face: dict[str, dict]) -> None:
    """Per video, the frames without a face and the longest run of them: never lost in silence."""
    for video, n in no_face.items():
        _say(f"{video}: no face in {n['frames_without_face']} of {n.get('frames', '?')} frames (longest gap {n.get('longest_gap', '?')} frames)")


def _finish(failures: list[InputFailure]) -> None:
    """Report per-input failures on stderr, one line each, and exit 1 if there were any."""
    for f in failures:
        _line("error", "red", str(f))
    if failures:
        raise typer.Exit(1)


def _stop_on_sigterm() -> None:
    """SIGTERM stops a run as Ctrl-C does (the workers stopped, what is finished kept and said)."""
    import signal
    import threading

    def stop(signum, frame):
        raise KeyboardInterrupt

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, stop)


def _quiet(what: str = "No progress bar."):
    return typer.Option(False, "--quiet", "-q", help=what)


def _device(what: str = ""):
    return typer.Option("auto", metavar="DEVICE", help=f"auto (CUDA when present), cpu, cuda or cuda:N{what}.")


LANDMARKS_HELP = ("How faces are found: auto (the checkpoint's own landmark backbone where it has one, else dlib), "
                  "network (the landmark network of --landmark-model; also spelt auhm), dlib, fan or truth.")
LANDMARK_MODEL_HELP = ("Landmark checkpoint (auhm train --task landmarks): the tracker for --landmarks network; with auto, "
                       "the tracker a video falls back on when the AU model's landmarks reject its faces (instead of dlib), "
                       "and the face search where no detector is installed.")
DETECTOR_HELP = ("Full-frame face detector of --landmarks auto: mtcnn, dlib (HOG), opencv (Haar) or dlib-cnn "
                 "(default: the first installed of dlib, opencv). --landmarks dlib always uses dlib's HOG.")
FACES_HELP = ("all: every face, the face column its id within the video (ids hold through crossings and gaps up to "
              "--max-gap; after longer ones, a face that looks the same takes its old id, and at the video's end tracks "
              "of one person are joined); largest: only the largest face, id 0.")


def _precision():
    return typer.Option("auto", metavar="NAME", help="auto, fp32, bf16 or fp16 (auto: bf16 on GPUs and CPUs that compute it natively, else fp32).")


# ── synth ───────────────────────────────────────────────────────────────────────────────────
@command()
def synth(
    out: Path = typer.Argument(..., metavar="DIR", help="Directory to write the corpus into."),
    layout: str = typer.Option("disfa", metavar="NAME", help="On-disk layout: disfa, bp4d or fera2017 (AU-labelled videos), landmarks (still faces with .pts files, the 300-W layout), or crowd (2–4 people per video who cross, enter and leave; truth tracks and per-person labels)."),
    subjects: Optional[int] = typer.Option(None, min=1, metavar="N", help="Number of subjects (video layouts; default 3; layout crowd: videos)."),
    frames: Optional[int] = typer.Option(None, min=1, metavar="N", help="Frames per video (video layouts; default 120, crowd 200)."),
    identities: Optional[int] = typer.Option(None, min=1, metavar="N", help="Layout landmarks: number of people (default 600), none of them an AU layout's subject."),
    images: Optional[int] = typer.Option(None, min=1, metavar="N", help="Layout landmarks: number of images, dealt evenly over the identities (default 6000)."),
    size: Optional[str] = typer.Option(None, metavar="WxH", help="Frame size (default 320x240; layout crowd 640x360)."),
    fps: float = typer.Option(20.0, help="Frames per second."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same corpus."),
    difficulty: str = typer.Option("medium", metavar="NAME", help="easy, medium or hard: widens pose, lighting and occlusion."),
    first_subject: int = typer.Option(0, help="Index of the first subject id (to make held-out subjects; layout landmarks: of the first identity)."),
    quiet: bool = _quiet(),
) -> None:
    """Write a synthetic corpus in a real dataset's on-disk layout: AU-labelled videos, or still faces with landmarks.

    Example: [bold]auhm synth /tmp/s --subjects 3 --frames 120 --seed 1[/bold]

    Landmark pretraining corpus: [bold]auhm synth /tmp/lm --layout landmarks --identities 600 --images 6000[/bold],
    then [bold]auhm prepare landmarks /tmp/lm --format 300w --out work/lm[/bold].

    Multi-face tracking: [bold]auhm synth /tmp/crowd --layout crowd --subjects 4[/bold] (truth tracks in auhm_truth/, labels.parquet).
    """
    from auhm.synth import SynthConfig, make_corpus, parse_size
    from auhm.synth.corpus import CROWD_LAYOUT, LANDMARK_LAYOUT

    stills = layout == LANDMARK_LAYOUT
    if stills and (subjects is not None or frames is not None):
        raise UsageError("layout landmarks makes still images: give --identities and --images, not --subjects or --frames")
    if not stills and (identities is not None or images is not None):
        raise UsageError("--identities and --images are for --layout landmarks (video layouts take --subjects and --frames)")
    crowd = layout == CROWD_LAYOUT
    counts = {"identities": identities or 600, "images": images or max(6000, identities or 0)} if stills else {"subjects": subjects or 3, "frames": frames or (200 if crowd else 120)}
    width, height = parse_size(size or ("640x360" if crowd else "320x240"))
    config = SynthConfig(out, layout=layout, width=width, height=height, fps=fps, seed=seed, difficulty=difficulty,
                         first_subject=first_subject, **counts)
    result = make_corpus(config, quiet=quiet)
    rate = result.frames / max(result.seconds, 1e-9)
    if stills:
        _say(f"wrote {result.frames} face images with .pts landmarks of {config.identities} identities to {out} "
             f"({rate:,.0f} images/s); read it with: auhm prepare landmarks {out} --format 300w")
    else:
        _say(f"wrote {len(result.videos)} {config.layout} videos, {result.frames} frames to {out} ({rate:,.0f} frames/s); truth in {out}/auhm_truth")


# ── landmarks ───────────────────────────────────────────────────────────────────────────────
@command()
def landmarks(
    videos: List[str] = typer.Argument(..., metavar="VIDEOS", help="Videos, folders, globs or @list.txt files."),
    out: Path = typer.Option(Path("landmarks.parquet"), "--out", "-o", help="Output Parquet."),
    backend: str = typer.Option("dlib", metavar="NAME", help="dlib, fan, network (a landmark checkpoint: --model; also spelt auhm) or truth."),
    model: Optional[Path] = typer.Option(None, metavar="CKPT", help="Landmark checkpoint (auhm train --task landmarks) for --backend network."),
    truth: Optional[Path] = typer.Option(None, help="Sidecar Parquet/CSV for --backend truth (default: an auhm_truth/ folder above each video)."),
    batch_size: int = typer.Option(16, metavar="N", help="Frames per batch."),
    device: str = _device(" (for the fan and network backends)"),
    faces: str = typer.Option("all", metavar="MODE", help=FACES_HELP),
    quiet: bool = _quiet("No progress bar and no summary line."),
) -> None:
    """Face detection + tracked 68-point landmarks per frame → Parquet.

    Example: [bold]auhm landmarks 'videos/*.mp4' @more.txt --backend dlib --out landmarks.parquet[/bold]
    """
    from auhm.landmarks.job import LandmarksConfig, extract_landmarks

    config = LandmarksConfig(backend=backend, model=model, truth=truth, device=device, batch_size=batch_size, faces=faces, quiet=quiet)
    result = extract_landmarks(videos, out, config)
    rate = result.frames / result.seconds if result.seconds else 0.0
    if not quiet:
        written = f"{result.out}:" if result.frames else f"{result.out} not written:"
        _say(f"{written} {result.frames} frames from {result.videos} videos, face in {result.faces} "
             f"({rate:.1f} frames/s, backend {backend})")
    _say_faces(result.faces_seen)
    _finish(result.failures)


# ── heatmaps ────────────────────────────────────────────────────────────────────────────────
@command()
def heatmaps(
    data: Path = typer.Argument(..., metavar="DIR", help="Prepared corpus directory (auhm prepare)."),
    out: Path = typer.Option(Path("heatmaps.png"), "--out", "-o", help="PNG grid to write."),
    n: int = typer.Option(8, help="Number of crops to show."),
    mode: str = typer.Option("paper", metavar="NAME", help="paper (Eq. 1, sign fixed) or bmvc (fixed σ, truncated)."),
    seed: int = typer.Option(0, help="Random seed: which crops are shown."),
) -> None:
    """Preview the AU heatmap targets of a prepared corpus as a PNG grid.

    Example: [bold]auhm heatmaps work/disfa --out grid.png[/bold]
    """
    from auhm.viz.heatmap_grid import HeatmapGridConfig, render_heatmap_grid

    path = render_heatmap_grid(data, out, HeatmapGridConfig(n=n, mode=mode, seed=seed))
    _say(f"wrote {path}")


# ── models ──────────────────────────────────────────────────────────────────────────────────
@command()
def models(
    preset: str = typer.Option("paper", metavar="NAME", help="paper or small."),
    n_aus: int = typer.Option(12, metavar="N", help="Number of AU outputs."),
) -> None:
    """List the methods: parameters, trainable parameters and GFLOPs next to the paper's Table 5.

    Example: [bold]auhm models --preset paper[/bold]
    """
    from rich.console import Console
    from rich.table import Table

    from auhm.models.complexity import COUNTING_NOTE, complexity_table, first_aus

    rows = complexity_table(first_aus(n_aus), preset)
    table = Table(title=f"auhm methods, preset {preset}, {n_aus} AUs")
    for col in ("method", "params", "trainable", "GFLOPs", "paper params", "paper GFLOPs"):
        table.add_column(col, justify="left" if col == "method" else "right")
    for r in rows:
        paper = (f"{r.paper_parameters_m:.2f}M", f"{r.paper_gflops:.2f}") if r.paper_parameters_m and preset == "paper" else ("–", "–")
        table.add_row(r.method, f"{r.parameters / 1e6:.2f}M", f"{r.trainable / 1e6:.3f}M", f"{r.gflops:.2f}", *paper)
    out = Console()
    out.print(table)
    out.print(COUNTING_NOTE, style="dim")


# ── prepare ─────────────────────────────────────────────────────────────────────────────────
@command()
def prepare(
    kind: str = typer.Argument(..., help="disfa, disfa-plus, bp4d, fera2017, unbc, aff-wild2, feafa-plus, synth, csv, or landmarks (a landmark corpus: give --format)."),
    root: Path = typer.Argument(..., help="Dataset root (or manifest CSV for kind csv)."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Output directory for shards and labels."),
    landmarks_backend: str = typer.Option("truth", "--landmarks", metavar="NAME", help="truth, network (also spelt auhm), dlib or fan."),
    landmark_model: Optional[Path] = typer.Option(None, metavar="CKPT", help="Landmark checkpoint (auhm train --task landmarks) for --landmarks network."),
    size: int = typer.Option(256, metavar="PIXELS", help="Crop size."),
    every: int = typer.Option(1, metavar="K", help="Keep every k-th frame."),
    device: str = _device(" (for the fan and network landmark backends)"),
    landmark_format: Optional[str] = typer.Option(None, "--format", metavar="NAME", help="Kind landmarks: 300w (also iBUG, LFPW, HELEN, AFW and `auhm synth --layout landmarks`), 300w-lp, wflw or ls3d-w."),
    val_fraction: float = typer.Option(0.1, metavar="SHARE", help="Kind landmarks: share of photos (videos, identities) held out as the dev split."),
    seed: int = typer.Option(0, help="Kind landmarks: seed of the dev split."),
    scale_to_5: bool = typer.Option(False, "--scale-to-5", help="Kind feafa-plus: scale its 0–1 AU values to 0–5."),
    quiet: bool = _quiet(),
) -> None:
    """Landmarks + face crops + labels → training shards, labels.parquet and manifest.json.

    Example: [bold]auhm prepare disfa /data/DISFA --out work/disfa --landmarks dlib[/bold]

    Landmark corpora (for [bold]auhm train --task landmarks[/bold]), cut with their own points:
    [bold]auhm prepare landmarks /data/300W --format 300w --out work/300w[/bold]
    """
    from auhm.face.crop import CropConfig

    if kind == "landmarks":
        _prepare_landmarks(landmark_format, root, out, CropConfig(size=size), val_fraction, seed, quiet,
                           landmarks_backend=landmarks_backend, landmark_model=landmark_model, every=every)
        return
    if landmark_format is not None:
        raise UsageError("--format is for kind landmarks (auhm prepare landmarks ROOT --format 300w …)")
    if scale_to_5 and kind.lower() != "feafa-plus":
        raise UsageError("--scale-to-5 is for kind feafa-plus (its AU values run 0–1)")
    from auhm.data import PrepareConfig, prepare_corpus

    config = PrepareConfig(landmarks=landmarks_backend, landmark_model=landmark_model, crop=CropConfig(size=size), every=every, device=device,
                           scale_to_five=scale_to_5)
    report = prepare_corpus(kind, root, out, config, quiet=quiet)
    skipped = ", ".join(f"{n} {reason}" for reason, n in sorted(report.skipped.items())) or "none"
    _say(f"prepared {len(report.written)} sessions ({report.frames} crops; skipped frames: {skipped}), "
         f"{len(report.resumed)} already done, {len(report.failures)} failed → {out}")
    _finish(report.failures)


def _prepare_landmarks(fmt: Optional[str], root: Path, out: Path, crop, val_fraction: float, seed: int, quiet: bool,
                       landmarks_backend: str, landmark_model: Optional[Path], every: int) -> None:
    """``auhm prepare landmarks``: a landmark corpus cut with its own points."""
    from auhm.data.landmark_formats import landmark_formats
    from auhm.data.prepare_landmarks import LandmarkPrepareConfig, prepare_landmarks

    if fmt is None:
        raise UsageError(f"kind landmarks needs --format ({', '.join(landmark_formats())})")
    if landmarks_backend != "truth" or landmark_model is not None or every != 1:
        raise UsageError("a landmark corpus is cut with its own points: --landmarks, --landmark-model and --every do not apply")
    report = prepare_landmarks(fmt, root, out, LandmarkPrepareConfig(crop=crop, val_fraction=val_fraction, seed=seed), quiet=quiet)
    _say(f"prepared {report.frames} {fmt} faces into {len(report.written)} shards, {len(report.resumed)} shards already done, "
         f"{len(report.failures)} files failed → {out}")
    _finish(report.failures)


# ── train ───────────────────────────────────────────────────────────────────────────────────
@command()
def train(
    data: Path = typer.Argument(..., metavar="DIR", help="Prepared corpus directory."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", metavar="DIR", help="Run directory (not needed with --resume)."),
    method: str = typer.Option("adaptation", metavar="NAME", help="scratch, finetune, adaptation, attention, reparam, random-backbone, resnet18."),
    task: str = typer.Option("au", metavar="NAME", help="au, or landmarks to train the landmark network."),
    backbone: Optional[Path] = typer.Option(None, metavar="CKPT", help="Landmark-network checkpoint for transfer methods."),
    fold: Optional[int] = typer.Option(None, metavar="K", help="Held-out fold (1-based) for k-fold corpora."),
    folds: Optional[int] = typer.Option(None, metavar="K", help="Train one model per fold and pool out-of-fold predictions."),
    epochs: int = typer.Option(10, metavar="N", help="Passes over the training set."),
    batch_size: int = typer.Option(48, metavar="N", help="Crops per step (per process under torchrun)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate (default per method)."),
    preset: str = typer.Option("paper", metavar="NAME", help="paper or small."),
    device: str = _device(),
    precision: str = _precision(),
    workers: Optional[int] = typer.Option(None, metavar="N", help="Data worker processes (default: none on a CPU, where each batch is built between steps, a share per core; up to 12 beside a GPU)."),
    threads: Optional[int] = typer.Option(None, metavar="N", help="CPU threads (default: every core)."),
    follow_load: bool = typer.Option(False, "--follow-load", help="On a CPU, run on fewer threads while other processes keep cores busy: faster on a shared machine, but two runs may then differ in the weights' last bits (not with --threads)."),
    max_steps: Optional[int] = typer.Option(None, metavar="N", help="Stop after this many steps (smoke runs)."),
    val_every: Optional[int] = typer.Option(None, metavar="N", help="Also validate (and write best.pt / last.pt) every N steps, for long epochs."),
    resume: Optional[Path] = typer.Option(None, metavar="DIR", help="Run directory to resume."),
    seed: int = typer.Option(0, help="Random seed (initialisation, batch order, augmentation)."),
    list_methods: bool = typer.Option(False, "--list-methods", help="Print the methods table and exit."),
    quiet: bool = _quiet(),
) -> None:
    """Train an AU model (or, with --task landmarks, the landmark network used for transfer).

    Example: [bold]auhm train work/disfa --method adaptation --backbone runs/fan/best.pt --folds 3 --out runs/disfa[/bold]

    Landmark network first: [bold]auhm train work/disfa --task landmarks --out runs/fan[/bold].
    Multi-GPU: [bold]torchrun --nproc_per_node 4 -m auhm train …[/bold] (--batch-size is per process).
    """
    from auhm.train.config import DEFAULT_LR, TrainConfig
    from auhm.train.folds import FoldsResult, run_training

    if list_methods:
        for name, rate in DEFAULT_LR.items():
            typer.echo(f"{name:16s} default lr {rate:g}")
        raise typer.Exit()
    if out is None and resume is None:
        raise UsageError("--out RUN is required (or --resume RUN)")
    config = TrainConfig(data=data, out=out or resume, method=method, task=task, backbone=backbone, fold=fold, folds=folds, epochs=epochs,
                         batch_size=batch_size, lr=lr, preset=preset, device=device, precision=precision, workers=workers,
                         threads=threads, follow_load=follow_load, max_steps=max_steps, val_every=val_every, resume=resume, seed=seed, quiet=quiet)
    result = run_training(config)
    if isinstance(result, FoldsResult):
        from auhm.metrics.report import au_table

        console.print(au_table(result.scores, int(result.scores.loc["n"].max()), title="pooled out-of-fold"))
        _say(f"out-of-fold predictions: {result.predictions}")
    elif result.best:
        best = ", ".join(f"{k} {v:.4g}" for k, v in result.best.items() if k.startswith("val_"))
        _say(f"best epoch {result.best['epoch']:g} ({best}) → {result.out / 'best.pt'}")
    for run in result.folds if isinstance(result, FoldsResult) else [result]:
        if run.warning:
            _warn(f"{run.out}: {run.warning}")


# ── evaluate ────────────────────────────────────────────────────────────────────────────────
@command()
def evaluate(
    ckpt: Path = typer.Argument(..., metavar="CKPT", help="Checkpoint (AU or landmark)."),
    data: Path = typer.Argument(..., metavar="DIR", help="Prepared corpus directory."),
    split: Optional[str] = typer.Option(None, metavar="NAME", help="Split to evaluate, or all (default: the checkpoint's validation split)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Predictions Parquet."),
    batch_size: int = typer.Option(64, metavar="N", help="Crops per forward pass."),
    device: str = _device(),
    precision: str = _precision(),
    exclude_subjects: Optional[str] = typer.Option(None, metavar="IDS", help="Subjects to leave out, comma-separated (default on another corpus: the people both corpora hold)."),
    quiet: bool = _quiet(),
) -> None:
    """Run a checkpoint on a prepared split, write predictions and print the scores.

    Example: [bold]auhm evaluate runs/disfa/best.pt work/disfa --split part1[/bold]

    On another corpus it scores the AUs both code: [bold]auhm evaluate runs/disfa/best.pt work/disfa-plus[/bold]
    """
    from auhm.train.config import EvaluateConfig
    from auhm.metrics.report import au_table
    from auhm.train.evaluate import evaluate as evaluate_checkpoint

    result = evaluate_checkpoint(EvaluateConfig(checkpoint=ckpt, data=data, split=split, out=out, batch_size=batch_size,
                                                device=device, precision=precision, quiet=quiet,
                                                exclude_subjects=tuple(s.strip() for s in (exclude_subjects or "").split(",") if s.strip())))
    for line in result.cross.lines() if result.cross else []:
        _say(line)
    if result.warning:
        _warn(f"{ckpt}: {result.warning}")
    if "ICC" in result.scores.index:
        console.print(au_table(result.scores, len(result.predictions), title=escape(f"{ckpt} on {result.split}")))
    else:
        _say(f"{ckpt} on {result.split}: NME {result.scores.loc['NME', 'Avg.']:.4f} over {int(result.scores.loc['n', 'Avg.'])} crops")
    if result.path is not None:
        _say(f"predictions: {result.path}")


# ── annotate ────────────────────────────────────────────────────────────────────────────────
@command()
def annotate(
    videos: List[str] = typer.Argument(..., metavar="VIDEOS", help="Videos, folders, globs or @list.txt files."),
    model: Path = typer.Option(..., "--model", "-m", metavar="CKPT", help="AU checkpoint (auhm train)."),
    out: Path = typer.Option(Path("predictions.parquet"), "--out", "-o", help="Parquet file, or a directory with --per-video."),
    landmarks_backend: str = typer.Option("auto", "--landmarks", metavar="NAME", help=LANDMARKS_HELP),
    landmark_model: Optional[Path] = typer.Option(None, metavar="CKPT", help=LANDMARK_MODEL_HELP),
    per_video: bool = typer.Option(False, "--per-video", help="One Parquet per video in the --out directory."),
    batch_size: Optional[int] = typer.Option(None, metavar="N", help="Frames per model batch (default: 8 on CPU, 128 on GPU)."),
    device: str = _device(),
    precision: str = _precision(),
    workers: Optional[int] = typer.Option(None, metavar="N", help="Decode + tracking workers, one video each (processes for dlib and truth, threads otherwise; default: 1 on a CPU, whose cores run the model; beside a GPU one process per spare core, or up to 4 threads)."),
    every: int = typer.Option(1, metavar="K", help="Annotate every k-th frame."),
    faces: str = typer.Option("all", metavar="MODE", help=FACES_HELP),
    detect_every: int = typer.Option(16, metavar="K", help="Frames between full-frame face detections: a face that enters is found within K frames and followed back to where it entered (every K/2 frames while two faces or more are followed or one is missing; also right after a face is lost)."),
    max_gap: float = typer.Option(1.0, metavar="SECONDS", help="How long a face may be missing (occluded, turned away, missed) and keep its id."),
    min_face: Optional[int] = typer.Option(None, metavar="PX", help="Smallest face side to find, in pixels of the frame (default: the detector's)."),
    detector: Optional[str] = typer.Option(None, metavar="NAME", help=DETECTOR_HELP),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo videos already annotated, and replace what --out held."),
    engine: str = typer.Option("local", metavar="NAME", help="local, or ray to spread videos over a Ray cluster."),
    quiet: bool = _quiet("No progress bar and no summary line."),
) -> None:
    """Annotate videos with per-frame AU intensities → Parquet (streaming, batched, resumable).

    Example: [bold]auhm annotate 'videos/*.mp4' --model runs/disfa/best.pt --out predictions.parquet[/bold]

    One face only, as older versions did: [bold]auhm annotate clip.mp4 --model best.pt --faces largest[/bold]

    MTCNN, which finds faces HOG misses (bench/RESULTS.md): [bold]auhm annotate clip.mp4 --model best.pt --detector mtcnn[/bold]
    """
    from auhm.infer.annotate import AnnotateConfig, annotate as run_annotate

    _stop_on_sigterm()

    config = AnnotateConfig(
        model=model, out=out, landmarks=landmarks_backend, landmark_model=landmark_model, per_video=per_video,
        batch_size=batch_size, device=device, precision=precision, workers=workers, every=every,
        overwrite=overwrite, engine=engine, quiet=quiet, faces=faces, detect_every=detect_every, max_gap=max_gap, min_face=min_face,
        detector=detector,
    )
    try:
        result = run_annotate(videos, config)
    except Interrupted as e:
        _say(str(e))
        raise typer.Exit(130) from None
    if not quiet:
        incomplete = f", {len(result.incomplete)} incomplete" if result.incomplete else ""
        where = f"{result.out} ({result.videos_held} video(s) in it)" if result.out.exists() else f"nothing written to {result.out}"
        _say(f"annotate: {len(result.written)} video(s), {result.frames} frames written, {len(result.skipped)} already done"
             f"{incomplete}, {len(result.failures)} failed → {where}")
    _say_faces(result.faces_seen, largest=faces == "largest")
    _say_no_face(result.no_face)
    for note in result.rejected:
        _warn(str(note))
    if result.merge_note:
        _say(f"annotate: {result.merge_note}")
    _finish(result.failures + result.incomplete)


# ── score ───────────────────────────────────────────────────────────────────────────────────
@command()
def score(
    pred: Path = typer.Argument(..., metavar="PREDICTIONS", help="Predictions: auhm Parquet, an OpenFace 2.2 or py-feat CSV, or a directory of them."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Labels Parquet/CSV, or a dataset root with --kind."),
    kind: Optional[str] = typer.Option(None, metavar="NAME", help="The corpus kind when --labels is a dataset root (disfa, disfa-plus, bp4d, fera2017, unbc, aff-wild2, feafa-plus, …)."),
    by: Optional[str] = typer.Option(None, metavar="GROUP", help="Also score per video or per subject."),
    threshold: float = typer.Option(1.0, help="Occurrence threshold for F1."),
    ci: Optional[float] = typer.Option(None, metavar="LEVEL", help="Bootstrap confidence level, e.g. 0.95 (resamples whole videos)."),
    boot: int = typer.Option(1000, metavar="N", help="Bootstrap resamples."),
    face: Optional[int] = typer.Option(None, metavar="ID", help="Videos with several faces a frame, labels without a face column: score this track (default: the one found on the most frames; the log says which)."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write scores as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write scores as CSV."),
) -> None:
    """Score predictions: ICC(3,1), MSE, MAE, Pearson r, F1 per AU and averaged.

    Example: [bold]auhm score predictions.parquet --labels work/disfa/labels.parquet --ci 0.95 --json scores.json[/bold]
    """
    from rich.console import Console

    from auhm.io import atomic_path, check_writable, write_json_atomic
    from auhm.metrics.report import ScoreConfig, report_tables, score as score_predictions

    config = ScoreConfig(pred, labels, kind=kind, by=by, threshold=threshold, ci=ci, boot=boot, face=face)
    for option, path in (("--json", json_out), ("--csv", csv_out)):
        if path is not None:
            check_writable(path, option)
    report = score_predictions(config)
    for line in report.join.summary() + report.notes:
        _say(line)
    out = Console()
    for table in report_tables(report):
        out.print(table)
    if json_out:
        write_json_atomic(report.to_dict(), json_out)
        _say(f"wrote {json_out}")
    if csv_out:
        with atomic_path(csv_out) as tmp:
            report.long_frame().to_csv(tmp, index=False)
        _say(f"wrote {csv_out}")
    _finish(report.failures)


# ── export ──────────────────────────────────────────────────────────────────────────────────
@command()
def export(
    pred: Path = typer.Argument(..., metavar="PREDICTIONS", help="Predictions Parquet, or a directory of them."),
    to: str = typer.Option(..., "--to", metavar="FORMAT", help="openface (OpenFace 2.2's CSV, one per video) or csv (one plain CSV)."),
    out: Path = typer.Option(..., "--out", "-o", metavar="DIR", help="Folder to write into (--to csv: also a .csv file)."),
) -> None:
    """Write predictions for other tools: OpenFace 2.2's CSVs (its scripts and notebooks read them unchanged) or a plain CSV.

    Example: [bold]auhm export predictions.parquet --to openface --out openface_csv/[/bold], then [bold]auhm score openface_csv/ --labels labels.parquet[/bold]
    """
    from auhm.interop.export import export as run_export

    result = run_export(pred, to, out)
    _say(f"export: {result.rows} rows of {result.videos} video(s) → {len(result.files)} {to} file(s) in {out}")
    _finish(result.failures)


# ── plot / render ───────────────────────────────────────────────────────────────────────────
@command()
def plot(
    pred: Path = typer.Argument(..., metavar="PREDICTIONS", help="Predictions Parquet."),
    video: Optional[str] = typer.Option(None, help="Video to plot: its path, path tail or stem (default: the first)."),
    labels: Optional[Path] = typer.Option(None, help="Labels to overlay: a labels Parquet/CSV, or a dataset root with --kind."),
    kind: Optional[str] = typer.Option(None, metavar="NAME", help="disfa, bp4d or fera2017 when --labels is a dataset root."),
    face: Optional[int] = typer.Option(None, metavar="ID", help="The face (track id) to plot where a video has several (default: the one found on the most frames)."),
    out: Path = typer.Option(Path("timeline.png"), "--out", "-o", help="Image to write (PNG, or any format matplotlib writes)."),
) -> None:
    """AU intensity timelines, one row per AU, labels overlaid when given.

    Example: [bold]auhm plot predictions.parquet --video clip.mp4 --out timeline.png[/bold]
    """
    from auhm.viz.timeline import TimelineConfig, timeline

    written = timeline(TimelineConfig(pred, out, video=video, labels=labels, kind=kind, face=face))
    _say(f"wrote {written}")


@command()
def render(
    video: Path = typer.Argument(..., help="Video to draw on."),
    model: Path = typer.Option(..., "--model", "-m", metavar="CKPT", help="AU checkpoint (auhm train) with heatmap outputs."),
    out: Path = typer.Option(Path("overlay.mp4"), "--out", "-o", help="Video to write (MP4)."),
    landmarks_backend: str = typer.Option("auto", "--landmarks", metavar="NAME", help=LANDMARKS_HELP),
    landmark_model: Optional[Path] = typer.Option(None, metavar="CKPT", help=LANDMARK_MODEL_HELP),
    device: str = _device(),
    max_frames: Optional[int] = typer.Option(None, metavar="N", help="Stop after the first N frames (default: all)."),
) -> None:
    """The video with predicted AU heatmaps drawn back onto the face and intensities beside it.

    Example: [bold]auhm render clip.mp4 --model runs/disfa/best.pt --out overlay.mp4 --max-frames 300[/bold]
    """
    from auhm.infer.render import RenderConfig, render as run_render

    config = RenderConfig(
        model=model, out=out, landmarks=landmarks_backend, landmark_model=landmark_model, device=device, max_frames=max_frames,
    )
    result = run_render(video, config)
    _say(f"render: {result.frames} frames ({result.faces} with a face, landmarks: {result.landmark_backend}) → {result.out}")


if __name__ == "__main__":
    app()
