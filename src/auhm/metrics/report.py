"""``auhm score``: read predictions and labels, join them, score them (overall, with bootstrap
intervals, per video or subject), and the rich tables that show scores, for ``auhm score``,
``auhm evaluate`` and ``auhm train`` alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
from rich import box
from rich.table import Table

from auhm.errors import InputFailure, UsageError
from auhm.io import clean_labels, read_labels, read_predictions
from auhm.metrics.join import JoinReport, join_predictions
from auhm.metrics.sums import METRICS, au_scores, pair_sums, scores_frame, scores_from_sums
from auhm.targets import au_name


MAX_BOOT = 1_000_000  # bootstrap resamples: far more than any level needs


@dataclass
class ScoreConfig:
    """What ``auhm score`` scores and how."""

    predictions: Path
    labels: Path
    kind: str | None = None  # dataset kind when ``labels`` is a dataset root
    by: str | None = None  # "video" or "subject": also score each group
    threshold: float = 1.0  # occurrence threshold for F1
    ci: float | None = None  # bootstrap confidence level, resampling whole videos
    boot: int = 1000
    seed: int = 0
    face: int | None = None  # videos with several faces a frame: this track (default: the one on the most frames)

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        from auhm import checks
        from auhm.targets import MAX_INTENSITY

        if self.by not in (None, "video", "subject"):
            raise UsageError(f"--by must be video or subject, not {self.by!r}")
        if self.ci is not None and not 0 < self.ci < 1:
            raise UsageError(f"--ci must be a level between 0 and 1 (e.g. 0.95), not {self.ci}")
        if self.boot < 1:
            raise UsageError(f"--boot must be at least 1, not {self.boot}")
        checks.between(self.boot, 1, MAX_BOOT, "--boot")
        checks.finite(self.threshold, "--threshold", above=0)  # an intensity: F1 counts a frame as an occurrence at or above it
        checks.between(self.threshold, 0, MAX_INTENSITY, "--threshold", "intensities run from 0 to 5")
        checks.seed(self.seed)


@dataclass
class ScoreReport:
    """Scores (rows ``METRICS``, columns AUs and Avg.), optional CI bounds and groups, the join report."""

    scores: pd.DataFrame
    join: JoinReport
    threshold: float
    low: pd.DataFrame | None = None
    high: pd.DataFrame | None = None
    ci: float | None = None
    boot: int = 0
    by: str | None = None
    groups: dict[str, pd.DataFrame] = field(default_factory=dict)
    failures: list[InputFailure] = field(default_factory=list)  # prediction files left out, unreadable
    occurrence: pd.DataFrame | None = None  # 0/1 labels: F1, accuracy, AUC, base rate (``metrics.occurrence``)
    notes: list[str] = field(default_factory=list)  # how side-annotated videos and extra columns were scored

    def long_frame(self) -> pd.DataFrame:
        """One tidy table for CSV: group, metric, stat (value / low / high), AU01 …, Avg."""
        parts = [("all", "value", self.scores)]
        if self.low is not None:
            parts += [("all", "low", self.low), ("all", "high", self.high)]
        parts += [(g, "value", df) for g, df in self.groups.items()]
        frames = []
        for group, stat, df in parts:
            df = df.rename_axis("metric").reset_index()
            df.insert(0, "stat", stat)
            df.insert(0, "group", group)
            frames.append(df[["group", "metric", "stat"] + [c for c in df.columns if c not in ("group", "metric", "stat")]])
        return pd.concat(frames, ignore_index=True)

    def to_dict(self) -> dict:
        """JSON-ready: NaN becomes null."""
        def table(df):
            return {m: {c: _json_number(v) for c, v in row.items()} for m, row in df.iterrows()}
        out = {"aus": [au_name(a) for a in self.join.aus], "threshold": self.threshold, "scores": table(self.scores)}
        if self.low is not None:
            out["ci"] = {"level": self.ci, "boot": self.boot, "resampled": "videos",
                         "low": table(self.low), "high": table(self.high)}
        if self.by:
            out["by"] = self.by
            out["groups"] = {g: table(df) for g, df in self.groups.items()}
        if self.occurrence is not None:
            out["labels"] = "occurrence"
            out["occurrence"] = table(self.occurrence)
        out["notes"] = self.notes
        out["join"] = self.join.to_dict()
        out["failures"] = [str(f) for f in self.failures]
        return out


def _json_number(v):
    v = float(v)
    return v if np.isfinite(v) else None


def load_label_table(path: Path, kind: str | None = None) -> pd.DataFrame:
    """Labels from a labels Parquet/CSV, or from a dataset root read as ``kind``."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir():
        if not kind:
            raise UsageError(f"{path}: is a directory; give --kind (disfa, bp4d, unbc, aff-wild2 …) to read it as a dataset root")
        from auhm.data import load_labels  # lazy: the corpus readers are heavy

        return clean_labels(load_labels(kind, path))
    return read_labels(path)


def score(config: ScoreConfig) -> ScoreReport:
    """Read, join and score predictions against labels.

    UsageError for anything that leaves nothing to score; unreadable files of a predictions
    directory are left out and listed in ``report.failures``.
    """
    if not Path(config.predictions).exists():
        raise UsageError(f"{config.predictions}: no such file or directory")
    failures: list[InputFailure] = []
    try:
        predictions = read_predictions(config.predictions, failures)
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise UsageError(f"{config.predictions}: cannot read predictions ({e})") from e
    try:
        labels = load_label_table(config.labels, config.kind)
    except UsageError:
        raise
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise UsageError(f"{config.labels}: cannot read labels ({e})") from e
    report = score_frames(predictions, labels, config)
    report.failures = failures
    return report


def score_frames(predictions: pd.DataFrame, labels: pd.DataFrame, config: ScoreConfig) -> ScoreReport:
    """Join and score two tables already in memory (the part of ``score`` after reading)."""
    from auhm.metrics.sides import apply_sides

    predictions, sides_left_out = apply_sides(predictions, labels)
    joined = join_predictions(predictions, clean_labels(labels), face=config.face)
    aus = joined.report.aus
    report = ScoreReport(au_scores(joined.y_true, joined.y_pred, aus, config.threshold), joined.report,
                         config.threshold, by=config.by)
    _score_beside(report, predictions, labels, joined, sides_left_out, config.threshold)
    videos, video_codes = np.unique(joined.video, return_inverse=True)
    if config.ci is not None:
        from auhm.metrics.bootstrap import bootstrap_scores

        report.low, report.high = bootstrap_scores(joined.y_true, joined.y_pred, video_codes, aus,
                                                   config.threshold, config.ci, config.boot, config.seed)
        report.ci, report.boot = config.ci, config.boot
    if config.by:
        if config.by == "video":
            names = videos
        else:
            from auhm.data.corpora import subject_of  # lazy: the corpus readers are heavy

            names = np.array([subject_of(v) for v in videos])
        group_names, group_of_video = np.unique(names, return_inverse=True)
        sums = pair_sums(joined.y_true, joined.y_pred, config.threshold,
                         groups=group_of_video[video_codes], n_groups=len(group_names))
        metrics = scores_from_sums(sums)
        report.groups = {str(g): scores_frame({m: v[i] for m, v in metrics.items()}, aus)
                         for i, g in enumerate(group_names)}
    return report


def _score_beside(report: ScoreReport, predictions, labels, joined, sides_left_out: dict[str, str], threshold: float) -> None:
    """What ``score`` adds to the AU scores: occurrence scores on 0/1 labels, label columns other than
    AUs (PSPI), and the side-annotated videos left out as ambiguous."""
    from auhm.metrics.occurrence import is_occurrence, occurrence_scores
    from auhm.metrics.pspi import PSPI, extra_scores

    if is_occurrence(joined.y_true):
        report.occurrence = occurrence_scores(joined.y_true, joined.y_pred, joined.report.aus, threshold)
    if PSPI in labels and labels[PSPI].notna().any():
        extra, notes = extra_scores(predictions, labels, joined.report.matched, [PSPI], threshold)
        report.notes += notes
        for column in extra:
            report.scores[column] = extra[column]
    for lv, why in sides_left_out.items():
        report.join.ambiguous[lv] = [why]
        if lv in report.join.unmatched_labels:
            report.join.unmatched_labels.remove(lv)


SHOWN = tuple(m for m in METRICS if m != "RMSE")  # RMSE is √MSE: in --json and --csv, not on screen


def _number(v, metric: str, digits: int) -> str:
    if not np.isfinite(v):
        return "–"
    return f"{v:,.0f}" if metric == "n" else f"{v:.{digits}f}"


def _metric_table(title: str, first: str) -> Table:
    t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    t.add_column(first, overflow="fold")
    for metric in SHOWN:
        t.add_column(metric, justify="right", overflow="fold")
    return t


def au_table(scores: pd.DataFrame, frames: int, threshold: float = 1.0, title: str | None = None,
             low: pd.DataFrame | None = None, high: pd.DataFrame | None = None, ci: float | None = None,
             digits: int = 2) -> Table:
    """Scores (rows ``METRICS``, columns AU01 … and Avg., as ``au_scores`` makes them) as a rich
    table over ``frames`` frames: one row per AU, one column per metric, so that even a table
    with confidence intervals (``low`` / ``high`` at level ``ci``) fits 80 columns; a number is
    never cut (a cell too narrow folds). ``auhm score``, ``evaluate`` and ``train`` all show this."""
    scored = int(np.nanmax(scores.loc["n"].to_numpy(np.float64), initial=0)) if "n" in scores.index else frames
    if scored == frames:
        heading = f"AU scores on {frames:,} frames, each with a prediction and a label"
    else:  # frames matched by video and index, some without a prediction (no face) or without labels
        heading = f"AU scores on {scored:,} of {frames:,} matched frames: those with a prediction and a label"
    table = _metric_table(f"{title}: {heading}" if title else heading, "AU")
    table.caption = f"n: frames with a prediction and this AU's label; F1 at intensity ≥ {threshold:g}"
    table.caption_justify = "left"
    for au, row in scores.T.iterrows():  # rows AU01 … Avg.
        table.add_row(str(au), *(_number(row[m], m, digits) for m in SHOWN), style="bold" if au == "Avg." else None)
        if low is not None and high is not None and au in low:
            table.add_row(f"{ci:.0%} CI", *("" if m == "n" else f"{_number(low[au][m], m, digits)}–{_number(high[au][m], m, digits)}"
                                           for m in SHOWN), style="dim")
    return table


def report_tables(report: ScoreReport, digits: int = 2) -> list[Table]:
    """``auhm score``'s tables: the AU table, then one row per video or subject with ``--by``."""
    tables = []
    if report.occurrence is not None:
        tables.append(occurrence_table(report.occurrence, report.join.rows_matched, report.threshold, digits))
    tables.append(au_table(report.scores, report.join.rows_matched, report.threshold, low=report.low, high=report.high,
                           ci=report.ci, digits=digits,
                           title="intensity metrics, of little meaning on 0/1 labels" if report.occurrence is not None else None))
    if report.groups:
        per = _metric_table(f"Per {report.by} (averages over AUs)", report.by or "")
        for group, df in report.groups.items():
            per.add_row(group, *(_number(df.loc[m, "Avg."] if m != "n" else df.loc[m].iloc[:-1].max(), m, digits) for m in SHOWN))
        tables.append(per)
    return tables


def occurrence_table(scores: pd.DataFrame, frames: int, threshold: float, digits: int = 2) -> Table:
    """Occurrence scores (rows ``OCCURRENCE_METRICS``, columns AUs and Avg.) one row per AU."""
    from auhm.metrics.occurrence import OCCURRENCE_METRICS

    t = Table(title=f"Occurrence (0/1 labels): AU scores on {frames:,} matched frames", title_justify="left",
              box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
    t.add_column("AU", overflow="fold")
    for metric in OCCURRENCE_METRICS:
        t.add_column(metric, justify="right", overflow="fold")
    t.caption = f"present: label 1, prediction ≥ {threshold:g}; AUC needs no threshold; base rate: share of frames labelled 1"
    t.caption_justify = "left"
    for au, row in scores.T.iterrows():
        t.add_row(str(au), *(_number(row[m], m, digits) for m in OCCURRENCE_METRICS), style="bold" if au == "Avg." else None)
    return t
