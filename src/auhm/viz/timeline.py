"""AU intensity timelines: one row per AU, predictions against time, labels overlaid, lost frames shaded.

Drawn with matplotlib's object API (``Figure`` on the Agg canvas), so it works on headless
machines and never touches pyplot's global state.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from auhm.errors import UsageError
from auhm.io import au_columns, check_writable, read_predictions
from auhm.metrics.faces import pick_face
from auhm.metrics.join import match_videos
from auhm.metrics.report import load_label_table


@dataclass
class TimelineConfig:
    """What ``auhm plot`` draws."""

    predictions: Path
    out: Path = Path("timeline.png")
    video: str | None = None  # default: the first video of the table
    labels: Path | None = None
    kind: str | None = None  # read ``labels`` as a dataset root of this kind (disfa, bp4d, fera2017)
    x: str = "auto"  # "time" (seconds), "frame", or "auto": time when every timestamp is known
    dpi: int = 110
    face: int | None = None  # the track to plot where the video has several faces (default: on the most frames)


def _pick(videos: list[str], wanted: str | None, what: str) -> str:
    if wanted is None:
        return videos[0]
    found = match_videos([wanted], videos)
    if wanted in found.matched:
        return found.matched[wanted]
    if wanted in found.ambiguous:
        raise UsageError(f"--video {wanted!r} matches several {what} videos: {', '.join(found.ambiguous[wanted])}")
    raise UsageError(f"--video {wanted!r} is not in the {what} (videos: {', '.join(videos[:5])}"
                     + (" …)" if len(videos) > 5 else ")"))


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, stop) index runs where mask is true."""
    edges = np.diff(np.r_[0, mask.astype(np.int8), 0])
    return list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))


def plot_timeline(predictions: pd.DataFrame, out: str | Path, video: str | None = None,
                  labels: pd.DataFrame | None = None, x: str = "auto", dpi: int = 110, face: int | None = None) -> Path:
    """Draw one video's AU timelines to ``out`` (PNG, or any format matplotlib writes); of a video
    with several faces a frame, one track's (``face``, default the one on the most frames)."""
    aus = au_columns(predictions.columns)
    if not aus:
        raise UsageError("the predictions table has no AU columns")
    videos = list(dict.fromkeys(predictions["video"].astype(str)))
    if not videos:
        raise UsageError("the predictions table is empty")
    chosen = _pick(videos, video, "predictions")
    pred, picked, _ = pick_face(predictions[predictions["video"].astype(str) == chosen], face)
    pred = pred.sort_values("frame")
    frames = pred["frame"].to_numpy(np.int64)

    stamps = pred["timestamp"].to_numpy(np.float64) if "timestamp" in pred else np.full(len(pred), np.nan)
    use_time = x == "time" or (x == "auto" and len(pred) > 1 and np.isfinite(stamps).all())
    if x == "time" and not np.isfinite(stamps).all():
        raise UsageError(f"{chosen}: timestamps are missing, plot with x = frame")
    if use_time:
        fps = 1.0 / np.median(np.diff(stamps) / np.maximum(np.diff(frames), 1)) if len(pred) > 1 else 1.0
        to_x = lambda f: stamps[0] + (np.asarray(f, np.float64) - frames[0]) / fps  # noqa: E731
        xs = stamps
    else:
        to_x = lambda f: np.asarray(f, np.float64)  # noqa: E731
        xs = frames.astype(np.float64)
    lost = ~pred["success"].to_numpy(bool) if "success" in pred else np.zeros(len(pred), bool)

    label_rows = None
    if labels is not None:
        label_videos = list(dict.fromkeys(labels["video"].astype(str)))
        matched = match_videos(label_videos, [chosen]).matched
        if not matched:
            raise UsageError(f"no label video matches {chosen}")
        label_rows = labels[labels["video"].astype(str) == next(iter(matched))].sort_values("frame")
        if "face" in label_rows and chosen in picked:  # labels per face: the same face's
            label_rows = label_rows[label_rows["face"] == picked[chosen]["face"]]

    fig = Figure(figsize=(11, 0.85 * len(aus) + 1.2), dpi=dpi, layout="constrained")
    axes = fig.subplots(len(aus), 1, sharex=True, squeeze=False)[:, 0]
    half_step = 0.5 * float(np.median(np.diff(xs))) if len(xs) > 1 else 0.5
    for ax, au in zip(axes, aus):
        for start, stop in _runs(lost):
            ax.axvspan(xs[start] - half_step, xs[stop - 1] + half_step, color="0.85", lw=0, zorder=0)
        if label_rows is not None and au in label_rows:
            ax.step(to_x(label_rows["frame"]), label_rows[au].to_numpy(np.float64), where="mid",
                    color="tab:orange", lw=1.0, label="label")
        ax.plot(xs, pred[au].to_numpy(np.float64), color="tab:blue", lw=1.0, label="prediction")
        ax.set_ylim(-0.2, 5.3)
        ax.set_yticks([0, 5])
        ax.set_ylabel(au, rotation=0, ha="right", va="center")
        ax.grid(axis="y", color="0.9", lw=0.5)
        for side in ("top", "right"):
            ax.spines[side].set_visible(False)
    axes[-1].set_xlabel("time (s)" if use_time else "frame")
    handles, names = axes[0].get_legend_handles_labels()
    if lost.any():
        from matplotlib.patches import Patch

        handles.append(Patch(color="0.85", label="no face"))
        names.append(f"no face ({int(lost.sum())} frames)")
    fig.legend(handles, names, loc="outside upper right", ncols=len(handles), frameon=False)
    title = chosen + (f"  face {picked[chosen]['face']} (of {picked[chosen]['tracks']})" if chosen in picked else "")
    fig.suptitle(title, x=0.01, ha="left", fontsize=10)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    return out


def timeline(config: TimelineConfig) -> Path:
    """Read the tables named in ``config`` and draw the timeline; UsageError for unusable input."""
    check_writable(config.out)
    try:
        predictions = read_predictions(config.predictions)
        labels = load_label_table(config.labels, config.kind) if config.labels is not None else None
    except (OSError, ValueError) as e:
        raise UsageError(str(e)) from e
    if config.x not in ("auto", "time", "frame"):
        raise UsageError(f"x must be auto, time or frame, not {config.x!r}")
    return plot_timeline(predictions, config.out, config.video, labels, config.x, config.dpi, config.face)
