"""Per-AU scores of predictions against labels, computed from per-AU sums.

Every metric (ICC(3,1), MSE, RMSE, MAE, Pearson r, F1 of occurrence) follows from eleven sums
per AU, so scoring a million frames is a few vectorised passes, and bootstrap resamples of whole
videos are a matrix product of resample counts with per-video sums (``auhm.metrics.bootstrap``).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

import numpy as np
import pandas as pd
import pyarrow as pa
from rich import box
from rich.table import Table

from auhm.errors import InputFailure, UsageError
from auhm.io import au_columns, clean_labels, read_labels, read_predictions
from auhm.targets import au_name, parse_au

METRICS = ("ICC", "MSE", "RMSE", "MAE", "PCC", "F1", "n")

# Sums of one (label x, prediction y) pair set, per AU. x and y are centred on their global
# means (same shift for every group) so that variances do not cancel catastrophically;
# d = x - y is not shifted. tp / fp / fn count occurrence (value ≥ threshold).
SUM_NAMES = ("n", "sx", "sy", "sxx", "syy", "sxy", "sdd", "sad", "tp", "fp", "fn")
_S = {name: i for i, name in enumerate(SUM_NAMES)}

# Variances below this (intensity units²) are treated as a constant rater: PCC is undefined.
_ZERO_VARIANCE = 1e-12


def _as_2d(a) -> np.ndarray:
    a = np.asarray(a, dtype=np.float64)
    return a[:, None] if a.ndim == 1 else a


def pair_sums(y_true, y_pred, threshold: float = 1.0, groups=None, n_groups: int | None = None) -> np.ndarray:
    """Sums (``SUM_NAMES``) per AU of the pairs where both sides are finite.

    y_true, y_pred: (n,) or (n, N). Returns (len(SUM_NAMES), N), or with ``groups`` (n integer
    codes in [0, n_groups)) one block per group: (n_groups, len(SUM_NAMES), N).
    """
    t, p = _as_2d(y_true), _as_2d(y_pred)
    if t.shape != p.shape:
        raise ValueError(f"labels {t.shape} and predictions {p.shape} differ in shape")
    if groups is None:
        def total(a):
            return a.sum(axis=0, dtype=np.float64)

        def dot(a, b):
            return np.einsum("ij,ij->j", a, b)  # no (n, N) temporary

        def count(mask):
            return np.count_nonzero(mask, axis=0).astype(np.float64)
    else:
        codes = np.asarray(groups)
        if codes.shape != (t.shape[0],):
            raise ValueError("groups must hold one code per row")
        n_groups = int(codes.max()) + 1 if n_groups is None else n_groups
        if not np.all(codes[:-1] <= codes[1:]):
            order = np.argsort(codes, kind="stable")
            t, p, codes = t[order], p[order], codes[order]
        present, starts = np.unique(codes, return_index=True)

        def total(a):
            out = np.zeros((n_groups, a.shape[1]))
            out[present] = np.add.reduceat(a.astype(np.float64, copy=False), starts, axis=0)
            return out

        def dot(a, b):
            return total(a * b)

        count = total

    valid = np.isfinite(t) & np.isfinite(p)
    t0 = np.where(valid, t, 0.0)
    p0 = np.where(valid, p, 0.0)
    n_valid = np.maximum(np.count_nonzero(valid, axis=0), 1)
    xc = t0 - t0.sum(axis=0) / n_valid
    yc = p0 - p0.sum(axis=0) / n_valid
    xc[~valid] = 0.0
    yc[~valid] = 0.0
    d = t0 - p0  # zero where either side is missing
    true_on = valid & (t0 >= threshold)
    pred_on = valid & (p0 >= threshold)
    parts = [
        count(valid), total(xc), total(yc), dot(xc, xc), dot(yc, yc), dot(xc, yc), dot(d, d), total(np.abs(d)),
        count(true_on & pred_on), count(pred_on & ~true_on), count(true_on & ~pred_on),
    ]
    return np.stack(parts, axis=-2)


def scores_from_sums(sums: np.ndarray) -> dict[str, np.ndarray]:
    """Metrics from ``pair_sums`` output (any leading shape (..., len(SUM_NAMES), N))."""
    s = {name: sums[..., i, :] for name, i in _S.items()}
    n = s["n"]
    with np.errstate(invalid="ignore", divide="ignore"):
        mx, my = s["sx"] / n, s["sy"] / n
        vx = np.maximum(s["sxx"] / n - mx * mx, 0.0)
        vy = np.maximum(s["syy"] / n - my * my, 0.0)
        vx = np.where(vx < _ZERO_VARIANCE, 0.0, vx)
        vy = np.where(vy < _ZERO_VARIANCE, 0.0, vy)
        cov = np.where((vx == 0) | (vy == 0), 0.0, s["sxy"] / n - mx * my)
        # ICC(3,1), k = 2: (BMS - EMS) / (BMS + EMS) = 2 cov / (var x + var y).
        icc = np.where(n >= 2, 2 * cov / (vx + vy), np.nan)
        pcc = np.where(n >= 2, cov / np.sqrt(vx * vy), np.nan)
        mse = s["sdd"] / n
        f1_den = 2 * s["tp"] + s["fp"] + s["fn"]
        f1 = np.where(f1_den > 0, 2 * s["tp"] / f1_den, np.nan)
        return {
            "ICC": icc,
            "MSE": mse,
            "RMSE": np.sqrt(mse),
            "MAE": s["sad"] / n,
            "PCC": pcc,
            "F1": f1,
            "n": n,
        }


def mean_over_aus(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis (AUs), NaNs left out; NaN where every AU is NaN."""
    finite = np.isfinite(a)
    count = finite.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, np.where(finite, a, 0.0).sum(axis=-1) / count, np.nan)


def scores_frame(metrics: dict[str, np.ndarray], aus) -> pd.DataFrame:
    """One table: rows ``METRICS``, columns AU01 … and Avg. (the mean over AUs, NaNs left out)."""
    columns = [au_name(a) for a in aus]
    rows = {m: list(metrics[m]) + [float(mean_over_aus(metrics[m]))] for m in METRICS}
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns + ["Avg."])


def au_scores(y_true, y_pred, aus, threshold: float = 1.0) -> pd.DataFrame:
    """Rows ICC, MSE, RMSE, MAE, PCC, F1, n; columns AU01 … and Avg.

    y_true, y_pred: (n frames, N AUs); a frame is left out of an AU's scores when either side
    is NaN there. F1 scores occurrence, intensity ≥ ``threshold``.
    """
    aus = tuple(aus)
    t, p = _as_2d(y_true), _as_2d(y_pred)
    if t.shape[1] != len(aus):
        raise ValueError(f"{t.shape[1]} AU columns but {len(aus)} AUs named")
    return scores_frame(scores_from_sums(pair_sums(t, p, threshold)), aus)


# ── joining predictions with labels ─────────────────────────────────────────────────────────
@dataclass
class JoinReport:
    """What the join of predictions with labels matched, left out and found odd."""

    aus: tuple[int, ...] = ()
    matched: dict[str, str] = field(default_factory=dict)  # label video -> prediction video
    how: dict[str, str] = field(default_factory=dict)  # label video -> rule that matched it
    unmatched_labels: list[str] = field(default_factory=list)
    unmatched_predictions: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)  # label video -> candidates
    frame_mismatch: list[dict] = field(default_factory=list)  # video, labels, predictions, matched
    rows_matched: int = 0
    label_rows_unmatched: int = 0
    prediction_rows_unmatched: int = 0
    duplicate_rows: int = 0
    other_faces: int = 0  # prediction rows of faces other than face 0, left out
    left_out: dict[str, int] = field(default_factory=dict)  # AU -> matched rows with a null side
    ignored_aus: dict[str, list[str]] = field(default_factory=dict)  # reason -> AUs not scored

    def to_dict(self) -> dict:
        return asdict(self) | {"aus": [au_name(a) for a in self.aus]}

    def summary(self, limit: int = 8) -> list[str]:
        """One line per finding, for the log."""
        def some(items) -> str:
            items = list(items)
            return ", ".join(map(str, items[:limit])) + (f" … (+{len(items) - limit})" if len(items) > limit else "")

        n_labels = len(self.matched) + len(self.unmatched_labels) + len(self.ambiguous)
        rules = Counter(self.how.values())
        lines = [f"matched {len(self.matched)} of {n_labels} label videos to predictions"
                 + (f" (by {', '.join(f'{r}: {n}' for r, n in rules.items())})" if rules else "")
                 + f"; {self.rows_matched:,} frames in common"]
        if self.ambiguous:
            lines.append(f"ambiguous, left out: {some(f'{lv} -> {c}' for lv, c in self.ambiguous.items())}")
        if self.unmatched_labels:
            lines.append(f"label videos without predictions ({len(self.unmatched_labels)}): {some(self.unmatched_labels)}")
        if self.unmatched_predictions:
            lines.append(f"prediction videos without labels ({len(self.unmatched_predictions)}): "
                         f"{some(self.unmatched_predictions)}")
        if self.frame_mismatch:
            lines.append(f"frame counts differ in {len(self.frame_mismatch)} videos: " + some(
                f"{m['video']} labels {m['labels']} / predictions {m['predictions']} ({m['matched']} matched)"
                for m in self.frame_mismatch))
        dropped = {au: n for au, n in self.left_out.items() if n}
        if dropped:
            lines.append(f"frames left out with a null label or prediction: {some(f'{au} {n:,}' for au, n in dropped.items())}")
        for reason, aus in self.ignored_aus.items():
            lines.append(f"AUs ignored, {reason}: {', '.join(aus)}")
        if self.other_faces:
            lines.append(f"{self.other_faces:,} prediction rows of faces other than face 0 left out")
        if self.duplicate_rows:
            lines.append(f"{self.duplicate_rows:,} duplicate (video, frame) rows left out")
        return lines


@dataclass
class Joined:
    """Label and prediction arrays aligned frame by frame, keyed by the label's video."""

    video: np.ndarray  # (n,) label video of each row
    frame: np.ndarray  # (n,)
    y_true: np.ndarray  # (n, N) float64
    y_pred: np.ndarray  # (n, N) float64
    report: JoinReport


def _posix(video: str) -> str:
    return str(video).replace("\\", "/")


def _stem(video: str) -> str:
    return PurePosixPath(_posix(video)).stem


@dataclass(frozen=True)
class _VideoName:
    """The forms of a video path the matching rules compare, computed once per video."""

    text: str
    parts: tuple[str, ...]
    stem: str
    lower: str

    @classmethod
    def of(cls, video: str) -> "_VideoName":
        path = PurePosixPath(_posix(video))
        return cls(str(video), path.parts, path.stem, path.stem.lower())


def _is_tail(a: _VideoName, b: _VideoName) -> bool:
    short, long = (a.parts, b.parts) if len(a.parts) <= len(b.parts) else (b.parts, a.parts)
    return len(short) > 0 and long[len(long) - len(short):] == short


# Rules from strictest to loosest: (the key candidates must share, then the test they must pass).
# A label video is matched by the first rule that finds exactly one unclaimed prediction video.
_MATCH_RULES = {
    "path": (lambda v: v.parts, lambda a, b: True),
    "path tail": (lambda v: v.parts[-1] if v.parts else "", _is_tail),
    "stem": (lambda v: v.stem, lambda a, b: True),
    "stem, any case": (lambda v: v.lower, lambda a, b: True),
    "stem contained": (lambda v: None, lambda a, b: bool(a.lower and b.lower) and (a.lower in b.lower or b.lower in a.lower)),
}


def match_videos(label_videos, prediction_videos) -> JoinReport:
    """Pair label videos with prediction videos: exact path, path tail, stem, stem in any case, contained stem.

    Stronger rules claim first; a label video with several candidates under the first rule that
    finds any is left unmatched and reported as ambiguous.
    """
    report = JoinReport()
    free_labels = [_VideoName.of(v) for v in dict.fromkeys(map(str, label_videos))]
    free_preds = [_VideoName.of(v) for v in dict.fromkeys(map(str, prediction_videos))]
    for rule, (key, same) in _MATCH_RULES.items():
        by_key: dict = {}
        for pv in free_preds:
            by_key.setdefault(key(pv), []).append(pv)
        claims: dict[str, list[str]] = {}
        for lv in free_labels:
            candidates = [pv.text for pv in by_key.get(key(lv), ()) if same(lv, pv)]
            if len(candidates) == 1:
                claims.setdefault(candidates[0], []).append(lv.text)
            elif len(candidates) > 1:
                report.ambiguous[lv.text] = candidates
        for pv, lvs in claims.items():
            if len(lvs) == 1:
                report.matched[lvs[0]] = pv
                report.how[lvs[0]] = rule
            else:
                for lv in lvs:
                    report.ambiguous[lv] = [pv]
        done = set(report.matched) | set(report.ambiguous)
        free_labels = [lv for lv in free_labels if lv.text not in done]
        claimed = set(report.matched.values())
        free_preds = [pv for pv in free_preds if pv.text not in claimed]
    report.unmatched_labels = [lv.text for lv in free_labels]
    report.unmatched_predictions = [pv.text for pv in free_preds]
    return report


def join_predictions(predictions: pd.DataFrame, labels: pd.DataFrame) -> Joined:
    """Align predictions with labels on (video, frame) over the AUs both tables hold.

    Raises ``UsageError`` when no AU is shared or no frame matches.
    """
    for name, table in (("predictions", predictions), ("labels", labels)):
        missing = {"video", "frame"} - set(table.columns)
        if missing:
            raise UsageError(f"{name} table lacks columns {sorted(missing)}")
    pred_columns, label_columns = au_columns(predictions.columns), au_columns(labels.columns)
    pred_aus = [c for c in pred_columns if predictions[c].notna().any()]
    label_aus = [c for c in label_columns if labels[c].notna().any()]
    shared = [c for c in label_aus if c in set(pred_aus)]
    if not shared:
        raise UsageError(f"predictions ({', '.join(pred_aus) or 'no AU columns'}) and labels "
                         f"({', '.join(label_aus) or 'no AU columns'}) share no AU")

    if "face" in predictions and (predictions["face"] != 0).any():
        other = predictions["face"] != 0
        other_faces = int(other.sum())
        predictions = predictions[~other]
    else:
        other_faces = 0

    report = match_videos(labels["video"].unique(), predictions["video"].unique())
    report.aus = tuple(parse_au(c) for c in shared)
    report.other_faces = other_faces
    ignored = {"only in the labels": [c for c in label_aus if c not in pred_columns],
               "only in the predictions": [c for c in pred_aus if c not in label_columns],
               "no label values": [c for c in label_columns if c not in label_aus and c in pred_columns],
               "no predicted values": [c for c in pred_columns if c not in pred_aus and c in label_columns]}
    report.ignored_aus = {k: v for k, v in ignored.items() if v}

    if not report.matched:
        def some(videos):
            return ", ".join(map(str, videos[:3])) + (" …" if len(videos) > 3 else "")
        raise UsageError(f"no (video, frame) of the predictions matches the labels: no prediction video "
                         f"({some(report.unmatched_predictions)}) matches a label video ({some(report.unmatched_labels)})")
    key_of_pred = {pv: lv for lv, pv in report.matched.items()}
    pred = pd.DataFrame({"video": predictions["video"].astype(str).map(key_of_pred),
                         "frame": predictions["frame"].astype(np.int64)})
    lab = pd.DataFrame({"video": labels["video"].astype(str), "frame": labels["frame"].astype(np.int64)})
    for c in shared:
        pred[c] = predictions[c].to_numpy(np.float64)
        lab[c] = labels[c].to_numpy(np.float64)
    pred = pred[pred["video"].notna()]
    lab = lab[lab["video"].isin(report.matched.keys())]
    n_dup = len(pred) + len(lab)
    pred = pred.drop_duplicates(["video", "frame"])
    lab = lab.drop_duplicates(["video", "frame"])
    report.duplicate_rows = n_dup - len(pred) - len(lab)

    merged = lab.merge(pred, on=["video", "frame"], how="inner", suffixes=("_true", "_pred"), sort=True)
    report.rows_matched = len(merged)
    report.label_rows_unmatched = int(len(labels) - len(merged))
    report.prediction_rows_unmatched = int(len(predictions) - len(merged))
    if not len(merged):
        raise UsageError("no (video, frame) of the predictions matches the labels"
                         + (f"; unmatched label videos: {', '.join(report.unmatched_labels[:3])}"
                            if report.unmatched_labels else ""))

    label_counts = lab.groupby("video").size()
    pred_counts = pred.groupby("video").size()
    joint_counts = merged.groupby("video").size()
    for lv in sorted(report.matched):
        n_lab, n_pred = int(label_counts.get(lv, 0)), int(pred_counts.get(lv, 0))
        if n_lab != n_pred:
            report.frame_mismatch.append({"video": lv, "prediction_video": report.matched[lv], "labels": n_lab,
                                          "predictions": n_pred, "matched": int(joint_counts.get(lv, 0))})

    y_true = merged[[f"{c}_true" for c in shared]].to_numpy(np.float64)
    y_pred = merged[[f"{c}_pred" for c in shared]].to_numpy(np.float64)
    valid = np.isfinite(y_true) & np.isfinite(y_pred)
    report.left_out = {c: int(len(merged) - v) for c, v in zip(shared, valid.sum(axis=0))}
    return Joined(merged["video"].to_numpy(), merged["frame"].to_numpy(), y_true, y_pred, report)


# ── scoring a predictions file against labels ───────────────────────────────────────────────
_SUBJECT_PATTERNS = (
    re.compile(r"(SN\d{3})", re.IGNORECASE),  # DISFA
    re.compile(r"(?<![A-Za-z0-9])([FM]\d{3})(?![0-9])"),  # BP4D / FERA 2015 / FERA 2017
)


def subject_of(video: str) -> str:
    """The subject id in a corpus video path (SN001, F001, M012 …), else the video's stem."""
    for pattern in _SUBJECT_PATTERNS:
        m = pattern.search(_posix(video))
        if m:
            return m.group(1).upper()
    return _stem(video)


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

    def __post_init__(self) -> None:
        if self.by not in (None, "video", "subject"):
            raise UsageError(f"--by must be video or subject, not {self.by!r}")
        if self.ci is not None and not 0 < self.ci < 1:
            raise UsageError(f"--ci must be a level between 0 and 1 (e.g. 0.95), not {self.ci}")
        if self.boot < 1:
            raise UsageError(f"--boot must be at least 1, not {self.boot}")


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
        out["join"] = self.join.to_dict()
        out["failures"] = [str(f) for f in self.failures]
        return out


def _json_number(v):
    v = float(v)
    return v if np.isfinite(v) else None


def _read_labels(config: ScoreConfig) -> pd.DataFrame:
    return load_label_table(config.labels, config.kind)


def load_label_table(path: Path, kind: str | None = None) -> pd.DataFrame:
    """Labels from a labels Parquet/CSV, or from a dataset root read as ``kind``."""
    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory")
    if path.is_dir():
        if not kind:
            raise UsageError(f"{path}: is a directory; give --kind disfa|bp4d|fera2017 to read it as a dataset root")
        from auhm.data import load_labels  # lazy: the corpus readers are heavy and optional here

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
        labels = _read_labels(config)
    except UsageError:
        raise
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise UsageError(f"{config.labels}: cannot read labels ({e})") from e
    report = score_tables(predictions, labels, config)
    report.failures = failures
    return report


def score_tables(predictions: pd.DataFrame, labels: pd.DataFrame, config: ScoreConfig) -> ScoreReport:
    """Join and score two tables already in memory (the part of ``score`` after reading)."""
    joined = join_predictions(predictions, clean_labels(labels))
    aus = joined.report.aus
    report = ScoreReport(au_scores(joined.y_true, joined.y_pred, aus, config.threshold), joined.report,
                         config.threshold, by=config.by)
    videos, video_codes = np.unique(joined.video, return_inverse=True)
    if config.ci is not None:
        from auhm.metrics.bootstrap import bootstrap_scores

        report.low, report.high = bootstrap_scores(joined.y_true, joined.y_pred, video_codes, aus,
                                                   config.threshold, config.ci, config.boot, config.seed)
        report.ci, report.boot = config.ci, config.boot
    if config.by:
        names = videos if config.by == "video" else np.array([subject_of(v) for v in videos])
        group_names, group_of_video = np.unique(names, return_inverse=True)
        sums = pair_sums(joined.y_true, joined.y_pred, config.threshold,
                         groups=group_of_video[video_codes], n_groups=len(group_names))
        metrics = scores_from_sums(sums)
        report.groups = {str(g): scores_frame({m: v[i] for m, v in metrics.items()}, aus)
                         for i, g in enumerate(group_names)}
    return report


SHOWN = tuple(m for m in METRICS if m != "RMSE")  # RMSE is √MSE: in --json and --csv, not on screen


def scores_table(report: ScoreReport, digits: int = 2) -> list[Table]:
    """Rich tables: one row per AU (and Avg.), one column per metric, so that even a table with
    confidence intervals fits 80 columns; a number is never cut (a cell too narrow folds)."""
    def fmt(v, metric: str) -> str:
        if not np.isfinite(v):
            return "–"
        return f"{v:,.0f}" if metric == "n" else f"{v:.{digits}f}"

    def table(title: str, first: str) -> Table:
        t = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True)
        t.add_column(first, overflow="fold")
        for metric in SHOWN:
            t.add_column(metric, justify="right", overflow="fold")
        return t

    main = table(f"AU scores on {report.join.rows_matched:,} matched frames; n: those scored (label and prediction "
                 f"both known); F1 at intensity ≥ {report.threshold:g}", "AU")
    for au, row in report.scores.T.iterrows():  # rows AU01 … Avg.
        main.add_row(str(au), *(fmt(row[m], m) for m in SHOWN), style="bold" if au == "Avg." else None)
        if report.low is not None:
            low, high = report.low[au], report.high[au]
            main.add_row(f"{report.ci:.0%} CI", *("" if m == "n" else f"{fmt(low[m], m)}–{fmt(high[m], m)}" for m in SHOWN),
                         style="dim")
    tables = [main]
    if report.groups:
        per = table(f"Per {report.by} (averages over AUs)", report.by or "")
        for group, df in report.groups.items():
            per.add_row(group, *(fmt(df.loc[m, "Avg."] if m != "n" else df.loc[m].iloc[:-1].max(), m) for m in SHOWN))
        tables.append(per)
    return tables
