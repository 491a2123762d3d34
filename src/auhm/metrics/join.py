"""Predictions joined to labels frame by frame: which prediction video is which label video
(exact path, path tail, stem …), the aligned arrays, and a report of what matched and what not."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

import numpy as np
import pandas as pd

from auhm.errors import UsageError
from auhm.io import au_columns
from auhm.targets import au_name, parse_au


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
    other_faces: int = 0  # prediction rows of faces other than the one joined, left out
    faces: dict[str, dict] = field(default_factory=dict)  # prediction video -> the face joined ({face, how, frames, tracks})
    on_face: bool = False  # the labels have a face column: joined on (video, frame, face)
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
        if self.on_face:
            lines.append("labels have a face column: joined on (video, frame, face)")
        if self.faces:
            lines.append("one face per video joined (the labels have one face a frame): " + some(
                f"{video} face {f['face']} ({f['how']}, {f['frames']:,} frames, {f['tracks']} tracks)" for video, f in self.faces.items()))
        if self.other_faces:
            lines.append(f"{self.other_faces:,} prediction rows of other faces left out")
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


def join_predictions(predictions: pd.DataFrame, labels: pd.DataFrame, face: int | None = None) -> Joined:
    """Align predictions with labels on (video, frame) over the AUs both tables hold.

    Labels with a ``face`` column join on (video, frame, face); otherwise a video with several
    faces a frame joins one track, ``face`` or the one on the most frames (``metrics.faces``).
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

    on_face = "face" in labels.columns
    picked, other_faces = {}, 0
    if not on_face:
        from auhm.metrics.faces import pick_face

        predictions, picked, other_faces = pick_face(predictions, face)
    elif "face" not in predictions:
        predictions = predictions.assign(face=0)
    keys = ["video", "frame", "face"] if on_face else ["video", "frame"]

    report = match_videos(labels["video"].unique(), predictions["video"].unique())
    report.aus = tuple(parse_au(c) for c in shared)
    report.other_faces, report.faces, report.on_face = other_faces, picked, on_face
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
    if on_face:
        pred["face"] = predictions["face"].to_numpy(np.float64)
        lab["face"] = labels["face"].to_numpy(np.float64)
    for c in shared:
        pred[c] = predictions[c].to_numpy(np.float64)
        lab[c] = labels[c].to_numpy(np.float64)
    pred = pred[pred["video"].notna()]
    lab = lab[lab["video"].isin(report.matched.keys())]
    n_dup = len(pred) + len(lab)
    pred = pred.drop_duplicates(keys)
    lab = lab.drop_duplicates(keys)
    report.duplicate_rows = n_dup - len(pred) - len(lab)

    merged = lab.merge(pred, on=keys, how="inner", suffixes=("_true", "_pred"), sort=True)
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
