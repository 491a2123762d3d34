"""Running a model over prepared shards: predictions, the prediction table, scores.

Used by validation during training, by the k-fold out-of-fold pass, and by ``auhm evaluate``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from auhm.console import progress
from auhm.device import autocast_context, model_input, resolve_device, resolve_precision, use_channels_last
from auhm.errors import UsageError
from auhm.face.crop import invert_affine, warp_points
from auhm.io import file_sha256, prediction_schema, write_parquet_atomic
from auhm.metrics import au_scores
from auhm.models.base import read_intensities
from auhm.targets import au_name
from auhm.targets.heatmaps import heatmaps_to_landmarks
from auhm.train.augment import ShardView, resize_affine
from auhm.train.batches import batch_loader
from auhm.train.config import EvaluateConfig
from auhm.train.distributed import Dist, gather_rows, share
from auhm.train.prepared import PreparedCorpus, load_prepared, split_corpus

if TYPE_CHECKING:
    from auhm.train.cross_corpus import CrossCorpus

OUTER_EYE_CORNERS = (36, 45)


@torch.no_grad()
def predict(model, view: ShardView, batch_size: int, device: torch.device, precision: str, workers: int | None = 0, task: str = "au",
            quiet: bool = True, scaled: bool = True) -> np.ndarray:
    """AU intensities (n, N) clipped to [0, 5] (``scaled``: with the model's fitted read-out), or for the
    landmark network points (n, 68, 2) in input pixels."""
    channels_last = use_channels_last(device, precision)
    loader = batch_loader(view, device, workers, batch_size=batch_size)
    out = []
    with progress(quiet) as bar:
        tid = bar.add_task("predict", total=len(view), unit="img")
        for batch in loader:
            x = model_input(batch["image"], device, channels_last)
            with autocast_context(device, precision):
                y = model(x)
            if task == "landmarks":
                points, _ = heatmaps_to_landmarks(y["heatmaps"].float(), model.input_size)
                out.append(points.cpu().numpy())
            else:
                out.append(read_intensities(model, y, scaled).cpu().numpy())
            bar.update(tid, advance=x.shape[0])
    return np.concatenate(out).astype(np.float32)


def predict_shared(model, view: ShardView, batch_size: int, device: torch.device, precision: str, workers: int | None = None,
                   task: str = "au", scaled: bool = True, ddp: Dist | None = None) -> np.ndarray:
    """:func:`predict` over every crop of ``view``, each rank of ``ddp`` predicting its share; every
    rank gets every row, in the view's order (one process: ``predict`` itself)."""
    world = ddp.world if ddp is not None else 1
    if world <= 1:
        return predict(model, view, batch_size, device, precision, workers, task, scaled=scaled)
    mine = view.subset(share(len(view), ddp.rank, world))
    rows = predict(model, mine, batch_size, device, precision, workers, task, scaled=scaled) if len(mine) else np.zeros(0, np.float32)
    return gather_rows(rows, world)


@torch.no_grad()
def presence_threshold(model, view: ShardView, device: torch.device, precision: str, limit: int = 256, batch_size: int = 32,
                       ddp: Dist | None = None) -> float:
    """Face/no-face threshold on the landmark network's mean heatmap peak, from held-out crops.

    Positives are the held-out faces; negatives the same crops with their patches shuffled (no
    face left). The threshold sits midway between the 2nd percentile of the positives and the
    98th of the negatives, so trackers built on this checkpoint know when they have lost the face.
    """
    from auhm.train.augment import shuffle_patches

    idx = np.linspace(0, len(view) - 1, min(limit, len(view))).astype(int)
    world = ddp.world if ddp is not None else 1
    mine = idx[share(len(idx), ddp.rank, world)] if world > 1 else idx
    faces = [view[int(i)]["image"] for i in mine]
    blanks = [shuffle_patches(f, np.random.default_rng((0, int(i)))) for f, i in zip(faces, mine)]  # the same on any rank
    peaks = []
    for images in (faces, blanks):
        out = [np.zeros(0, np.float32)]
        for start in range(0, len(images), batch_size):
            x = model_input(np.stack(images[start : start + batch_size]), device)
            with autocast_context(device, precision):
                maps = model(x)["heatmaps"].float()
            out.append(maps.amax(dim=(2, 3)).mean(dim=1).cpu().numpy())
        peaks.append(gather_rows(np.concatenate(out), world))
    pos, neg = np.quantile(peaks[0], 0.02), np.quantile(peaks[1], 0.98)
    if pos <= neg:  # not separable yet: split the medians
        pos, neg = np.median(peaks[0]), np.median(peaks[1])
    return float((pos + neg) / 2)


def validation_metrics(model, view: ShardView, labels: np.ndarray, aus, task: str, batch_size: int, device: torch.device,
                       precision: str, mean_shape: np.ndarray | None = None, workers: int | None = None,
                       ddp: Dist | None = None) -> dict:
    """What training logs after each epoch on the held-out crops, with the model in eval mode
    (under DDP every rank predicts its share and gets the same metrics).

    AU models: ICC(3,1) and MSE averaged over AUs, and ``val_spread``, the spread (standard
    deviation) of the predictions over that of the labels, averaged over AUs. The landmark network:
    NME, the NME of ``mean_shape`` (the training set's average face) placed in every crop, and the
    face/no-face ``presence_threshold``.
    """
    was_training = model.training
    model.eval()
    try:
        preds = predict_shared(model, view, batch_size, device, precision, workers, task, ddp=ddp)
        if task == "landmarks":
            truth = view_truth(view)
            metrics = {"val_nme": landmark_nme(preds, truth)}
            if mean_shape is not None:
                metrics["val_nme_mean_shape"] = landmark_nme(np.broadcast_to(view_landmarks(mean_shape, view), truth.shape), truth)
            metrics["presence_threshold"] = presence_threshold(model, view, device, precision, ddp=ddp)
            return metrics
    finally:
        model.train(was_training)
    scores = au_scores(labels, preds, aus)
    label_std = np.nanstd(labels, axis=0)
    pred_std = np.array([np.std(preds[~np.isnan(labels[:, j]), j]) if (~np.isnan(labels[:, j])).any() else np.nan for j in range(len(aus))])
    usable = label_std > 0
    spread = float(np.nanmean(pred_std[usable] / label_std[usable])) if usable.any() else float("nan")
    return {"val_icc": float(scores.loc["ICC", "Avg."]), "val_mse": float(scores.loc["MSE", "Avg."]), "val_spread": spread}


def view_landmarks(landmarks: np.ndarray, view: ShardView) -> np.ndarray:
    """Stored-crop landmarks in the coordinates of the crops ``view`` serves (resized to its input size)."""
    return warp_points(np.asarray(landmarks, np.float64), resize_affine(view.stored_size, view.input_size))


def view_truth(view: ShardView) -> np.ndarray:
    """The true landmarks of every crop of ``view`` in the coordinates it serves, read from the
    shards' table: no crop is decoded for them."""
    return view_landmarks(view.shards.landmarks[view.indices], view)


def landmark_nme(pred: np.ndarray, true: np.ndarray) -> float:
    """Mean point-to-point error normalised by the inter-ocular (outer eye corners 36–45) distance."""
    a, b = OUTER_EYE_CORNERS
    iod = np.linalg.norm(true[:, a] - true[:, b], axis=-1)
    err = np.linalg.norm(pred - true, axis=-1).mean(axis=-1)
    return float(np.mean(err / np.maximum(iod, 1e-6)))


def crop_boxes(affines: np.ndarray, crop_size: int) -> np.ndarray:
    """(n, 4) x0, y0, x1, y1 in frame pixels of each crop square, from its frame→crop affine."""
    corners = np.array([[-0.5, -0.5], [crop_size - 0.5, crop_size - 0.5]])
    boxes = [warp_points(corners, invert_affine(m)).reshape(4) for m in affines]
    return np.asarray(boxes, np.float32).reshape(-1, 4)


def prediction_frame(corpus: PreparedCorpus, indices: np.ndarray, intensities: np.ndarray, aus) -> pd.DataFrame:
    """Predictions of shard frames in the prediction schema (timestamp unknown: NaN; box: the crop's square)."""
    indices = np.asarray(indices, np.int64)
    shards = corpus.shards
    boxes = crop_boxes(corpus.affines[indices], corpus.crop_size)
    df = pd.DataFrame(
        {
            "video": shards.video[indices].astype(str),
            "frame": shards.frame[indices].astype(np.int32),
            "timestamp": np.full(len(indices), np.nan),
            "face": np.zeros(len(indices), np.int16),
            "success": np.ones(len(indices), bool),
            "confidence": np.ones(len(indices), np.float32),
            "x0": boxes[:, 0], "y0": boxes[:, 1], "x1": boxes[:, 2], "y1": boxes[:, 3],
        }
    )
    for j, a in enumerate(aus):
        df[au_name(a)] = intensities[:, j].astype(np.float32)
    return df


@dataclass
class EvaluateResult:
    scores: pd.DataFrame  # rows ICC, MSE…; columns AUxx, Avg. (landmarks: one NME row)
    predictions: pd.DataFrame
    split: str
    path: Path | None
    warning: str | None = None  # the checkpoint's own validation says it learned nothing
    cross: "CrossCorpus | None" = None  # the AUs and subjects scored (``train.cross_corpus``)


def evaluate(config: EvaluateConfig) -> EvaluateResult:
    """Run a checkpoint on a split of a prepared corpus, score it and optionally write predictions."""
    from auhm.models import load_checkpoint
    from auhm.models.checkpoint import learning_warning

    config.check()
    if not Path(config.checkpoint).is_file():
        raise UsageError(f"{config.checkpoint}: no such checkpoint")
    try:
        model, info = load_checkpoint(config.checkpoint)
    except ValueError as e:  # not an auhm checkpoint
        raise UsageError(str(e)) from None

    warning = learning_warning(info)
    device = resolve_device(config.device)
    precision = resolve_precision(device, config.precision)
    model.to(device).eval()
    if use_channels_last(device, precision):
        model.to(memory_format=torch.channels_last)
    aus = list(info["aus"])
    task = info.get("task", "au")
    cross = None
    if task != "landmarks":
        from auhm.train.cross_corpus import plan
        from auhm.train.prepared import read_manifest

        manifest = read_manifest(config.data)
        cross = plan(info, manifest, {v.get("subject") for v in (manifest.get("videos") or {}).values()},
                     tuple(config.exclude_subjects))
    corpus = load_prepared(config.data, cross.aus if cross else None)
    manifest, shards = corpus.manifest, corpus.shards
    if cross is not None and cross.other_corpus and config.split is None:
        indices, split_name = np.arange(len(shards)), "all"  # another corpus: the checkpoint's held-out split is not in it
    elif config.split == "all":  # every frame, e.g. a corpus of held-out subjects prepared on its own
        indices, split_name = np.arange(len(shards)), "all"
    elif config.split is not None:
        known = sorted(set(shards.split))
        if config.split not in known:
            raise UsageError(f"--split {config.split}: the corpus has splits {', '.join(known)}")
        indices, split_name = np.flatnonzero(shards.split == config.split), config.split
    else:
        tc = info.get("train_config") or {}
        split = split_corpus(manifest, shards, info.get("fold"), tc.get("folds"), tc.get("seed", 0), tc.get("holdout_fraction", 0.2))
        if info.get("val_subjects") and sorted(split.val_subjects) != sorted(info["val_subjects"]):
            raise UsageError(f"{config.data}: the checkpoint's held-out subjects {info['val_subjects']} are not this corpus's; pass --split")
        indices, split_name = split.val, split.name
    if cross is not None and cross.excluded:
        indices = indices[~np.isin(shards.subject[indices], cross.excluded)]
        if not len(indices):
            raise UsageError(f"{config.data}: no frames left once the subjects {', '.join(cross.excluded)} are left out")
    view = ShardView(shards, indices, model.input_size)
    preds = predict(model, view, config.batch_size, device, precision, config.workers, task, config.quiet)
    if task == "landmarks":
        truth = view_truth(view)
        scores = pd.DataFrame({"Avg.": [landmark_nme(preds, truth), float(len(view))]}, index=["NME", "n"])
        return EvaluateResult(scores, pd.DataFrame(), split_name, None, warning)
    preds, aus = preds[:, [aus.index(a) for a in cross.aus]], cross.aus  # the AUs both code
    table = prediction_frame(corpus, indices, preds, aus)
    scores = au_scores(shards.labels[indices], preds, aus)
    path = None
    if config.out is not None:
        meta = {"checkpoint": file_sha256(config.checkpoint), "checkpoint_path": str(config.checkpoint), "aus": aus, "split": split_name}
        path = write_parquet_atomic(table, config.out, schema=prediction_schema(aus, meta))
    return EvaluateResult(scores, table, split_name, path, warning, cross)
