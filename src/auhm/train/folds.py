"""k-fold training (one model per fold, pooled out-of-fold predictions) and ``auhm train``'s entry point."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from auhm.device import resolve_device, resolve_precision
from auhm.io import prediction_schema, write_json_atomic, write_parquet_atomic
from auhm.metrics import au_scores
from auhm.train.augment import ShardView
from auhm.train.config import TrainConfig
from auhm.train.distributed import init_distributed, rank_device, shutdown
from auhm.train.evaluate import predict_shared, prediction_frame
from auhm.train.prepared import load_prepared, split_corpus
from auhm.train.run_state import config_dict, load_run_config, saved_config
from auhm.train.trainer import TrainResult, train


@dataclass
class FoldsResult:
    out: Path
    scores: pd.DataFrame  # pooled out-of-fold scores (rows ICC, MSE…; columns AUxx, Avg.)
    predictions: Path
    folds: list[TrainResult]


def train_folds(config: TrainConfig) -> FoldsResult:
    """One model per fold (RUN/fold1 …), pooled out-of-fold predictions from each fold's last.pt.

    last.pt, not best.pt: best.pt is chosen on the held-out fold itself, so scoring it would
    select the model on the test subjects.
    """
    if config.resume is not None:
        config = load_run_config(config)
    config.check()
    k = config.folds
    ddp = init_distributed(config.device)
    if ddp.main:
        write_json_atomic(config_dict(config), Path(config.out) / "config.json")
    results = []
    for fold in range(1, k + 1):
        fold_dir = Path(config.out) / f"fold{fold}"
        resume = fold_dir if config.resume is not None and (fold_dir / "config.json").exists() else None
        results.append(train(dataclasses.replace(config, fold=fold, out=fold_dir, resume=resume)))
    corpus = load_prepared(config.data, trainable=True)
    shards = corpus.shards
    device = rank_device(resolve_device(config.device), ddp)
    precision = resolve_precision(device, config.precision)
    frames, truth, preds = [], [], []
    from auhm.models import load_checkpoint

    for fold, result in enumerate(results, 1):
        split = split_corpus(corpus.manifest, shards, fold, k, config.seed, config.holdout_fraction)
        model, _ = load_checkpoint(result.out / "last.pt")
        model.to(device).eval()
        p = predict_shared(model, ShardView(shards, split.val, model.input_size), config.batch_size, device, precision, config.workers,
                           "au", ddp=ddp)
        labelled = ~np.isnan(shards.labels[split.val]).all(axis=1)
        frames.append(prediction_frame(corpus, split.val[labelled], p[labelled], shards.aus))
        truth.append(shards.labels[split.val][labelled])
        preds.append(p[labelled])
    table = pd.concat(frames, ignore_index=True).sort_values(["video", "frame"], kind="stable")
    path = Path(config.out) / "oof_predictions.parquet"
    if ddp.main:
        write_parquet_atomic(table, path, schema=prediction_schema(shards.aus, {"protocol": f"{k}-fold out-of-fold, last.pt of each fold", "method": config.method}))
    scores = au_scores(np.concatenate(truth), np.concatenate(preds), shards.aus)
    return FoldsResult(Path(config.out), scores, path, results)


def run_training(config: TrainConfig) -> TrainResult | FoldsResult:
    """The entry point of ``auhm train``: k-fold when --folds is given (or the resumed run was k-fold), else one model."""
    config.check()
    k_fold = bool(config.folds)
    if config.resume is not None:
        saved = saved_config(config.resume)
        k_fold = bool(saved.get("folds")) and saved.get("fold") is None
    try:
        return train_folds(config) if k_fold else train(config)
    finally:
        shutdown()
