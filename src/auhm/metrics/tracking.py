"""Multi-face tracking scored against truth tracks: IDF1, MOTA and ID switches by py-motmetrics,
HOTA by TrackEval, never computed here by hand.

Both tables hold one row per (video, frame, face) with boxes ``x0, y0, x1, y1`` in frame pixels;
predictions are ``auhm annotate`` output (rows without a face, ``success`` false or ``face``
null, are skipped), truth is ``auhm synth --layout crowd``'s sidecars with a ``video`` column.
Truth faces less than ``min_visible`` visible (hidden behind another person, half off-frame) are
neither required nor counted against a tracker: a prediction that matches one (IoU ≥ ``iou``) is
left out with it, the MOT Challenge's rule for its "ignore" boxes.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd

from auhm.face.boxes import match_boxes

BOX = ["x0", "y0", "x1", "y1"]
INSTALL_HINT = "pip install 'auhm[test]' (py-motmetrics and trackeval score tracking)"


def _need(module: str, package: str):
    if importlib.util.find_spec(module) is None:
        raise ImportError(f"tracking scores need {package}, which is not installed: {INSTALL_HINT}")
    return importlib.import_module(module)


def face_rows(predictions: pd.DataFrame) -> pd.DataFrame:
    """The rows that hold a face: ``success`` true (when the column is there), a face id and a finite box."""
    keep = predictions["face"].notna() & np.isfinite(predictions[BOX].to_numpy(np.float64)).all(axis=1)
    if "success" in predictions:
        keep &= predictions["success"].fillna(False).astype(bool)
    return predictions[keep]


def _videos(predictions: pd.DataFrame, truth: pd.DataFrame) -> dict[str, str | None]:
    """Truth video → prediction video (None: the tracker has no rows for it), by auhm's video matching."""
    from auhm.metrics.join import match_videos

    report = match_videos(truth["video"].astype(str).unique(), predictions["video"].astype(str).unique())
    return {v: report.matched.get(v) for v in truth["video"].astype(str).unique()}


def truth_faces(predictions: pd.DataFrame, truth: pd.DataFrame, iou: float = 0.5) -> pd.Series:
    """The true face each prediction row lies on (frame by frame, one to one, IoU ≥ ``iou``; null
    where none): with it, per-face labels join a tracker's rows whatever ids the tracker gave."""
    out = pd.Series(np.nan, index=predictions.index)
    pred = face_rows(predictions)
    for video, pred_video in _videos(pred, truth).items():
        if pred_video is None:
            continue
        gt_by = dict(tuple(truth[truth["video"].astype(str) == video].groupby("frame")))
        for frame, p in pred[pred["video"].astype(str) == pred_video].groupby("frame"):
            g = gt_by.get(frame)
            if g is None:
                continue
            for r, c in match_boxes(g[BOX].to_numpy(np.float64), p[BOX].to_numpy(np.float64), iou):
                out[p.index[c]] = g["face"].iloc[r]
    return out


def _frames(truth: pd.DataFrame, pred: pd.DataFrame, iou: float, min_visible: float):
    """Per frame: truth ids and boxes, prediction ids and boxes, after the ignore rule."""
    visible = truth["visible"].to_numpy(np.float64) if "visible" in truth else np.ones(len(truth))
    truth = truth.assign(_ignored=visible < min_visible)
    gt_by = dict(tuple(truth.groupby("frame")))
    pr_by = dict(tuple(pred.groupby("frame")))
    for frame in sorted(set(gt_by) | set(pr_by)):
        g = gt_by.get(frame, truth.iloc[:0])
        p = pr_by.get(frame, pred.iloc[:0])
        ignored = g["_ignored"].to_numpy(bool)
        g_box, p_box = g[BOX].to_numpy(np.float64), p[BOX].to_numpy(np.float64)
        if ignored.any() and len(p):
            dropped = {c for r, c in match_boxes(g_box, p_box, iou) if ignored[r]}
            keep = np.array([c not in dropped for c in range(len(p))], bool)
            p, p_box = p[keep], p_box[keep]
        yield frame, g["face"].to_numpy(np.int64)[~ignored], g_box[~ignored], p["face"].to_numpy(np.int64), p_box


def _xywh(boxes: np.ndarray) -> np.ndarray:
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], axis=1) if len(boxes) else np.zeros((0, 4))


def _hota_data(frames: list, iou_of) -> dict:
    """TrackEval's per-sequence input: ids renumbered 0… and the similarity (IoU) of every pair."""
    gt_ids = {g: k for k, g in enumerate(sorted({int(i) for f in frames for i in f[1]}))}
    tr_ids = {t: k for k, t in enumerate(sorted({int(i) for f in frames for i in f[3]}))}
    return {
        "num_timesteps": len(frames),
        "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids),
        "num_gt_dets": sum(len(f[1]) for f in frames), "num_tracker_dets": sum(len(f[3]) for f in frames),
        "gt_ids": [np.array([gt_ids[int(i)] for i in f[1]], int) for f in frames],
        "tracker_ids": [np.array([tr_ids[int(i)] for i in f[3]], int) for f in frames],
        "similarity_scores": [iou_of(_xywh(f[2]), _xywh(f[4])) for f in frames],
    }


def track_scores(predictions: pd.DataFrame, truth: pd.DataFrame, iou: float = 0.5, min_visible: float = 0.5) -> dict:
    """IDF1, MOTA, ID switches (and per 1,000 face-frames), HOTA and their parts, overall and per video.

    ``predictions``: video, frame, face, x0…y1 (success optional); ``truth``: video, frame, face,
    x0…y1 (visible optional). A truth video without predictions counts as all missed.
    """
    mm = _need("motmetrics", "py-motmetrics")
    trackeval = _need("trackeval", "trackeval")
    from trackeval.datasets._base_dataset import _BaseDataset

    def iou_of(a, b):
        return _BaseDataset._calculate_box_ious(a, b, box_format="xywh") if len(a) and len(b) else np.zeros((len(a), len(b)))

    pred = face_rows(predictions)
    names, accumulators, hota, tracks = [], [], {}, {}
    hota_metric = trackeval.metrics.HOTA()
    for video, pred_video in _videos(pred, truth).items():
        mine = pred[pred["video"].astype(str) == pred_video] if pred_video is not None else pred.iloc[:0]
        frames = list(_frames(truth[truth["video"].astype(str) == video], mine, iou, min_visible))
        acc = mm.MOTAccumulator(auto_id=False)
        for frame, g_ids, g_box, p_ids, p_box in frames:
            overlap = iou_of(_xywh(g_box), _xywh(p_box))  # motmetrics' own iou_matrix needs NumPy < 2 (np.asfarray)
            distance = np.where(overlap >= iou, 1 - overlap, np.nan)
            acc.update(g_ids.tolist(), p_ids.tolist(), distance, frameid=int(frame))
        names.append(video)
        accumulators.append(acc)
        tracks[video] = int(mine["face"].nunique())
        hota[video] = hota_metric.eval_sequence(_hota_data(frames, iou_of))
    metrics = ["idf1", "idp", "idr", "mota", "motp", "num_switches", "num_objects", "num_predictions", "num_false_positives",
               "num_misses", "num_unique_objects", "mostly_tracked", "precision", "recall"]
    summary = mm.metrics.create().compute_many(accumulators, metrics=metrics, names=names, generate_overall=True)
    hota["OVERALL"] = hota_metric.combine_sequences(hota)
    tracks["OVERALL"] = sum(tracks.values())
    out = {}
    for name, row in summary.iterrows():
        h = hota[name]
        objects = int(row["num_objects"])
        out[name] = {
            "idf1": float(row["idf1"]), "mota": float(row["mota"]), "id_switches": int(row["num_switches"]),
            "switches_per_1000": 1000.0 * int(row["num_switches"]) / objects if objects else float("nan"),
            "hota": float(np.mean(h["HOTA"])), "deta": float(np.mean(h["DetA"])), "assa": float(np.mean(h["AssA"])),
            "face_frames": objects, "predicted_face_frames": int(row["num_predictions"]),
            "false_positives": int(row["num_false_positives"]), "misses": int(row["num_misses"]),
            "recall": float(row["recall"]), "precision": float(row["precision"]), "faces": int(row["num_unique_objects"]),
            "mostly_tracked": int(row["mostly_tracked"]), "tracks": tracks[name],
        }
    overall = out.pop("OVERALL")
    return {"overall": overall, "videos": out, "iou": iou, "min_visible": min_visible}
