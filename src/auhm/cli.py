"""The ``auhm`` command line: thin Typer commands over the package's modules.

Exit codes: 0 success, 1 some inputs failed (the rest processed and written), 2 usage error.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from auhm import __version__
from auhm.console import console
from auhm.errors import InputFailure, UsageError

app = typer.Typer(
    name="auhm",
    help="Facial Action Unit intensities, frame by frame, by heatmap regression (Ntinou et al. 2020).",
    no_args_is_help=True,
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"auhm {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """auhm: annotate video corpora with AU intensities; prepare corpora, train every method of the paper, score with ICC(3,1)."""


def _finish(failures: list[InputFailure]) -> None:
    """Report per-input failures on stderr, one line each, and exit 1 if there were any."""
    for f in failures:
        console.print(f"[red]error[/red] {f}", highlight=False, soft_wrap=True)
    if failures:
        raise typer.Exit(1)


def _usage(e: Exception) -> None:
    console.print(f"[red]usage error[/red] {e}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _not_built(issue: str) -> None:
    console.print(f"not built yet ({issue})")
    raise typer.Exit(2)


# ── synth ───────────────────────────────────────────────────────────────────────────────────
@app.command()
def synth(
    out: Path = typer.Argument(..., help="Directory to write the corpus into."),
    layout: str = typer.Option("disfa", help="On-disk layout: disfa, bp4d or fera2017."),
    subjects: int = typer.Option(3, min=1, help="Number of subjects."),
    frames: int = typer.Option(120, min=1, help="Frames per video."),
    size: str = typer.Option("320x240", help="Frame size WxH."),
    fps: float = typer.Option(20.0, help="Frames per second."),
    seed: int = typer.Option(0, help="Random seed: the same seed gives the same corpus."),
    difficulty: str = typer.Option("medium", help="easy, medium or hard: widens pose, lighting and occlusion."),
    first_subject: int = typer.Option(0, help="Index of the first subject id (to make held-out subjects)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a synthetic AU-labelled corpus in a real dataset's on-disk layout.

    Example: [bold]auhm synth /tmp/s --subjects 3 --frames 120 --seed 1[/bold]
    """
    _not_built("issue 2")


# ── landmarks ───────────────────────────────────────────────────────────────────────────────
@app.command()
def landmarks(
    videos: List[str] = typer.Argument(..., help="Videos, globs or @list.txt files."),
    out: Path = typer.Option(Path("landmarks.parquet"), "--out", "-o", help="Output Parquet."),
    backend: str = typer.Option("dlib", help="dlib, fan, auhm or truth."),
    model: Optional[Path] = typer.Option(None, help="Landmark checkpoint for --backend auhm."),
    truth: Optional[Path] = typer.Option(None, help="Sidecar Parquet/CSV for --backend truth."),
    batch_size: int = typer.Option(16, help="Frames per batch."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Face detection + tracked 68-point landmarks per frame → Parquet.

    Example: [bold]auhm landmarks clip.mp4 --backend dlib --out landmarks.parquet[/bold]
    """
    _not_built("issue 4")


# ── heatmaps ────────────────────────────────────────────────────────────────────────────────
@app.command()
def heatmaps(
    data: Path = typer.Argument(..., help="Prepared corpus directory (auhm prepare)."),
    out: Path = typer.Option(Path("heatmaps.png"), "--out", "-o", help="PNG grid to write."),
    n: int = typer.Option(8, help="Number of crops to show."),
    mode: str = typer.Option("paper", help="paper (Eq. 1, sign fixed) or bmvc (fixed σ, truncated)."),
    seed: int = typer.Option(0),
) -> None:
    """Preview the AU heatmap targets of a prepared corpus as a PNG grid.

    Example: [bold]auhm heatmaps work/disfa --out grid.png[/bold]
    """
    _not_built("issue 3")


# ── models ──────────────────────────────────────────────────────────────────────────────────
@app.command()
def models(
    preset: str = typer.Option("paper", help="paper or small."),
    n_aus: int = typer.Option(12, help="Number of AU outputs."),
) -> None:
    """List the methods: parameters, trainable parameters and GFLOPs next to the paper's Table 5.

    Example: [bold]auhm models --preset paper[/bold]
    """
    _not_built("issue 3")


# ── prepare ─────────────────────────────────────────────────────────────────────────────────
@app.command()
def prepare(
    kind: str = typer.Argument(..., help="disfa, bp4d, fera2017, synth or csv."),
    root: Path = typer.Argument(..., help="Dataset root (or manifest CSV for kind csv)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output directory for shards and labels."),
    landmarks_backend: str = typer.Option("truth", "--landmarks", help="truth, auhm, dlib or fan."),
    landmark_model: Optional[Path] = typer.Option(None, help="Landmark checkpoint for --landmarks auhm."),
    size: int = typer.Option(256, help="Crop size in pixels."),
    every: int = typer.Option(1, help="Keep every k-th frame."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Landmarks + face crops + labels → training shards, labels.parquet and manifest.json.

    Example: [bold]auhm prepare disfa /data/DISFA --out work/disfa --landmarks dlib[/bold]
    """
    _not_built("issue 4")


# ── train ───────────────────────────────────────────────────────────────────────────────────
@app.command()
def train(
    data: Path = typer.Argument(..., help="Prepared corpus directory."),
    out: Path = typer.Option(..., "--out", "-o", help="Run directory."),
    method: str = typer.Option("adaptation", help="scratch, finetune, adaptation, attention, reparam, random-backbone, resnet18."),
    task: str = typer.Option("au", help="au, or landmarks to train the landmark network."),
    backbone: Optional[Path] = typer.Option(None, help="Landmark-network checkpoint for transfer methods."),
    fold: Optional[int] = typer.Option(None, help="Held-out fold (1-based) for k-fold corpora."),
    folds: Optional[int] = typer.Option(None, help="Train one model per fold and pool out-of-fold predictions."),
    epochs: int = typer.Option(10),
    batch_size: int = typer.Option(48),
    lr: Optional[float] = typer.Option(None, help="Learning rate (default per method)."),
    preset: str = typer.Option("paper", help="paper or small."),
    device: str = typer.Option("auto", help="auto, cpu or cuda."),
    precision: str = typer.Option("auto", help="auto, fp32, bf16 or fp16."),
    workers: int = typer.Option(2, help="DataLoader workers."),
    max_steps: Optional[int] = typer.Option(None, help="Stop after this many steps (smoke runs)."),
    resume: Optional[Path] = typer.Option(None, help="Run directory to resume."),
    seed: int = typer.Option(0),
    list_methods: bool = typer.Option(False, "--list-methods", help="Print the methods table and exit."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Train an AU model (or, with --task landmarks, the landmark network used for transfer).

    Example: [bold]auhm train work/disfa --method adaptation --backbone runs/fan/best.pt --folds 3 --out runs/disfa[/bold]
    """
    _not_built("issue 5")


# ── evaluate ────────────────────────────────────────────────────────────────────────────────
@app.command()
def evaluate(
    ckpt: Path = typer.Argument(..., help="Checkpoint."),
    data: Path = typer.Argument(..., help="Prepared corpus directory."),
    split: Optional[str] = typer.Option(None, help="Split to evaluate (default: the checkpoint's validation split)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Predictions Parquet."),
    batch_size: int = typer.Option(64),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Run a checkpoint on a prepared split, write predictions and print the scores.

    Example: [bold]auhm evaluate runs/disfa/best.pt work/disfa --split part1[/bold]
    """
    _not_built("issue 5")


# ── annotate ────────────────────────────────────────────────────────────────────────────────
@app.command()
def annotate(
    videos: List[str] = typer.Argument(..., help="Videos, globs or @list.txt files."),
    model: Path = typer.Option(..., "--model", "-m", help="AU checkpoint."),
    out: Path = typer.Option(Path("predictions.parquet"), "--out", "-o", help="Parquet file, or a directory with --per-video."),
    landmarks_backend: str = typer.Option("auto", "--landmarks", help="auto, auhm, dlib, fan or truth."),
    landmark_model: Optional[Path] = typer.Option(None, help="Landmark checkpoint for --landmarks auhm."),
    per_video: bool = typer.Option(False, "--per-video", help="One Parquet per video in the --out directory."),
    batch_size: int = typer.Option(32),
    device: str = typer.Option("auto"),
    precision: str = typer.Option("auto"),
    workers: int = typer.Option(1, help="Decode/tracking threads."),
    every: int = typer.Option(1, help="Annotate every k-th frame."),
    overwrite: bool = typer.Option(False, help="Redo videos already annotated."),
    engine: str = typer.Option("local", help="local or ray."),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
) -> None:
    """Annotate videos with per-frame AU intensities → Parquet (streaming, batched, resumable).

    Example: [bold]auhm annotate 'videos/*.mp4' --model runs/disfa/best.pt --out predictions.parquet[/bold]
    """
    _not_built("issue 6")


# ── score ───────────────────────────────────────────────────────────────────────────────────
@app.command()
def score(
    pred: Path = typer.Argument(..., help="Predictions: auhm Parquet, a directory of them, or an OpenFace CSV."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Labels Parquet/CSV, or a dataset root with --kind."),
    kind: Optional[str] = typer.Option(None, help="disfa, bp4d or fera2017 when --labels is a dataset root."),
    by: Optional[str] = typer.Option(None, help="Also score per video or per subject."),
    threshold: float = typer.Option(1.0, help="Occurrence threshold for F1."),
    ci: Optional[float] = typer.Option(None, help="Bootstrap confidence level, e.g. 0.95 (resamples whole videos)."),
    boot: int = typer.Option(1000, help="Bootstrap resamples."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Write scores as JSON."),
    csv_out: Optional[Path] = typer.Option(None, "--csv", help="Write scores as CSV."),
) -> None:
    """Score predictions: ICC(3,1), MSE, MAE, Pearson r, F1 per AU and averaged.

    Example: [bold]auhm score predictions.parquet --labels work/disfa/labels.parquet[/bold]
    """
    _not_built("issue 7")


# ── plot / render ───────────────────────────────────────────────────────────────────────────
@app.command()
def plot(
    pred: Path = typer.Argument(..., help="Predictions Parquet."),
    video: Optional[str] = typer.Option(None, help="Video to plot (default: the first)."),
    labels: Optional[Path] = typer.Option(None, help="Labels to overlay."),
    out: Path = typer.Option(Path("timeline.png"), "--out", "-o"),
) -> None:
    """AU intensity timelines, one row per AU, labels overlaid when given.

    Example: [bold]auhm plot predictions.parquet --video clip.mp4 --out timeline.png[/bold]
    """
    _not_built("issue 7")


@app.command()
def render(
    video: Path = typer.Argument(..., help="Video to draw on."),
    model: Path = typer.Option(..., "--model", "-m", help="AU checkpoint."),
    out: Path = typer.Option(Path("overlay.mp4"), "--out", "-o"),
    landmarks_backend: str = typer.Option("auto", "--landmarks"),
    landmark_model: Optional[Path] = typer.Option(None),
    device: str = typer.Option("auto"),
    max_frames: Optional[int] = typer.Option(None),
) -> None:
    """The video with predicted AU heatmaps drawn back onto the face and intensities beside it.

    Example: [bold]auhm render clip.mp4 --model runs/disfa/best.pt --out overlay.mp4[/bold]
    """
    _not_built("issue 7")


if __name__ == "__main__":
    app()
