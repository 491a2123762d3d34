"""Training one model: the epoch loop, validation, checkpoints, resume, DDP.

A run directory holds ``best.pt`` and ``last.pt`` (model checkpoints, all ``annotate`` needs),
``resume.pt`` (see :mod:`auhm.train.run_state`), ``config.json``, ``history.csv`` and
``curves.png``. Under ``torchrun`` every rank trains on its shard of each epoch's permutation and
only rank 0 validates and writes.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from auhm.console import console, progress
from auhm.device import grad_scaler, resolve_device, resolve_precision, use_channels_last
from auhm.errors import RunFailed, UsageError
from auhm.io import atomic_path, write_json_atomic
from auhm.models.checkpoint import metrics_warning
from auhm.train.augment import ShardView
from auhm.train.batches import batch_loader
from auhm.train.config import TRANSFER_METHODS, TrainConfig
from auhm.train.distributed import all_reduce_mean, barrier, broadcast_buffers, init_distributed, rank_device
from auhm.train.evaluate import validation_metrics
from auhm.train.prepared import load_prepared, split_corpus
from auhm.train.readout import fit_readout, training_sample
from auhm.train.run_state import Progress, config_dict, load_run_config, read_run_state, restore_run_state, save_run_state
from auhm.train.sampling import EpochBatches
from auhm.train.steps import batch_to_device, train_step
from auhm.train.threads import ThreadTuner


@dataclass
class TrainResult:
    out: Path
    best: dict  # the best epoch's history row
    history: pd.DataFrame
    step_losses: list[float] = field(default_factory=list)  # every step of this invocation (rank 0)
    val_split: str = ""
    warning: str | None = None  # set when validation says the model learned nothing


def build_run_model(config: TrainConfig, aus):
    """The model of config.method; transfer methods start from --backbone's landmark network."""
    from auhm.models import build_model

    options = {}
    if config.method in TRANSFER_METHODS:
        if config.backbone is None:
            raise UsageError(f"--method {config.method} needs --backbone (a checkpoint of auhm train --task landmarks)")
        if not Path(config.backbone).exists():
            raise UsageError(f"--backbone {config.backbone}: no such file")
        options["backbone"] = str(config.backbone)
    try:
        return build_model(config.method, aus, config.preset, **options)
    except (ValueError, FileNotFoundError) as e:  # the preset, the corpus's AUs or the backbone do not fit the method
        raise UsageError(str(e)) from None


def is_better(value: float, current: float | None, key: str) -> bool:
    """NaN never beats a number (a constant predictor's ICC is NaN); NME is lower-better."""
    if not np.isfinite(value):
        return current is None
    if current is None or not np.isfinite(current):
        return True
    return value < current if key == "val_nme" else value > current


class Trainer:
    """One model of one run: set up from a TrainConfig, then :meth:`fit`."""

    def __init__(self, config: TrainConfig):
        self.ddp = init_distributed(config.device)
        device = rank_device(resolve_device(config.device), self.ddp)
        self.config, self.device = config, device
        self.precision = resolve_precision(device, config.precision)
        self.channels_last = use_channels_last(device, self.precision)
        self.out = Path(config.out)
        self.metric = "val_nme" if config.task == "landmarks" else "val_icc"
        state = read_run_state(self.out / "resume.pt") if config.resume is not None else None
        self.finished_state = state if state is not None and state.get("finished") else None
        if self.finished_state is None:
            self._set_up(state)

    def _set_up(self, state: dict | None) -> None:
        config, device = self.config, self.device
        corpus = load_prepared(config.data, trainable=True)
        self.shards = corpus.shards
        self.aus = list(self.shards.aus)
        self.split = split_corpus(corpus.manifest, self.shards, config.fold, config.folds, config.seed, config.holdout_fraction)
        torch.manual_seed(config.seed)
        np.random.seed(config.seed)
        random.seed(config.seed)
        model = build_run_model(config, self.aus).to(device)
        if self.channels_last:
            model = model.to(memory_format=torch.channels_last)
        self.model = model
        self.optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=config.learning_rate, weight_decay=config.weight_decay)
        self.scaler = grad_scaler(device, self.precision)
        negatives = config.negative_fraction if config.task == "landmarks" else 0.0
        self.train_view = ShardView(self.shards, self.split.train, model.input_size, config.augment, config.seed, negatives)
        self.val_view = ShardView(self.shards, self.split.val, model.input_size)
        self.sampler = EpochBatches(len(self.train_view), config.batch_size, config.seed, self.ddp.rank, self.ddp.world)
        self.steps_per_epoch = self.sampler.batches_per_epoch()
        self.total_steps = config.epochs * self.steps_per_epoch
        # Cosine over the whole run, stepped per step; --max-steps only stops early (like a kill).
        self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(self.optimizer, T_max=max(1, self.total_steps))
        self.loader = batch_loader(self.train_view, device, config.workers, batch_sampler=self.sampler, seed=config.seed, world=self.ddp.world)
        self.net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if self.ddp.world > 1 else model
        self.progress = restore_run_state(state, model, self.optimizer, self.scheduler, self.scaler) if state is not None else Progress()
        self.mean_shape = self.shards.landmarks[self.split.train].mean(axis=0) if config.task == "landmarks" else None
        # The training crops the read-out's scale is fitted on at each validation (heatmap AU models only).
        readout_frames = training_sample(self.split.train) if config.task == "au" and model.output_kind == "heatmap" else None
        self.readout_view = ShardView(self.shards, readout_frames, model.input_size) if readout_frames is not None else None
        self.readout_labels = self.shards.labels[readout_frames] if readout_frames is not None else None
        self.info = self._checkpoint_info(corpus)
        self.initial_threads = torch.get_num_threads()
        self.threads = ThreadTuner.for_run(device, self.ddp.world, config.threads, config.follow_load)
        if self.ddp.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json_atomic(config_dict(config), self.out / "config.json")

    def _checkpoint_info(self, corpus) -> dict:
        config = self.config
        info = {
            "method": config.method,
            "task": config.task,
            "aus": self.aus,
            "preset": config.preset,
            "crop": corpus.manifest.get("crop") or {"size": corpus.crop_size},
            "input_size": self.model.input_size,
            "train_config": config_dict(config),
            "val_split": self.split.name,
            "val_subjects": self.split.val_subjects,
            "fold": config.fold,
            "corpus": corpus.manifest.get("kind"),  # for cross-corpus evaluation
            "train_subjects": sorted(set(self.shards.subject[self.split.train])),
        }
        backbone = backbone_info(config.backbone)
        if "presence_threshold" in backbone:  # lets annotation tell a lost face from the backbone's maps
            info["backbone_presence_threshold"] = backbone["presence_threshold"]
        return info

    # ── the loop ──
    def fit(self) -> TrainResult:
        if self.finished_state is not None:
            s = self.finished_state
            best = s["best"]
            return TrainResult(self.out, best, pd.DataFrame(s["history"]), [], s.get("val_split", ""), best.get("warning") or None)
        config, p = self.config, self.progress
        step_losses: list[float] = []
        self.model.train()
        if config.threads:
            torch.set_num_threads(config.threads)
        try:
            with progress(config.quiet or not self.ddp.main) as bar:
                task_id = bar.add_task(f"train {config.method}", total=self.total_steps, completed=p.step, unit="step")
                while p.epoch < config.epochs:
                    if not self._epoch(step_losses, lambda: bar.update(task_id, advance=1)):
                        break
        finally:
            torch.set_num_threads(self.initial_threads)  # the tuner's choice ends with the run
        barrier(self.ddp.world)
        return TrainResult(self.out, p.best, pd.DataFrame(p.history), step_losses, self.split.name, p.best.get("warning") or None)

    def _epoch(self, step_losses: list[float], advance) -> bool:
        """Train the rest of the current epoch; False when --max-steps stopped the run inside it."""
        config, p = self.config, self.progress
        self.sampler.set_epoch(p.epoch, p.batch)
        tick = time.perf_counter()
        for batch in self.loader:
            loss = self._step(batch)
            step_losses.append(loss)
            now = time.perf_counter()
            p.add_step(loss, len(batch["image"]), now - tick)
            self.threads.observe(now - tick)
            tick = time.perf_counter()
            advance()
            if config.max_steps is not None and p.step >= config.max_steps:
                if p.batch < self.steps_per_epoch:
                    self._end_of_epoch(p.epoch + p.batch / self.steps_per_epoch)
                    self._save_state()
                    return False
                break
            if config.val_every and p.step % config.val_every == 0 and p.batch < self.steps_per_epoch:
                self._end_of_epoch(p.epoch + p.batch / self.steps_per_epoch)
            if self.ddp.main and config.checkpoint_every and p.step % config.checkpoint_every == 0:
                self._save_state()
        p.epoch, p.batch = p.epoch + 1, 0
        self._end_of_epoch(float(p.epoch))
        self._save_state(finished=p.epoch >= config.epochs)
        return not (config.max_steps is not None and p.step >= config.max_steps)

    def _step(self, batch: dict) -> float:
        images, rest = batch_to_device(batch, self.device, self.channels_last)
        loss = train_step(self.net, self.model, images, rest, self.optimizer, self.scaler, self.device, self.precision, self.config.task)
        self.scheduler.step()
        value = float(loss.detach())
        if not math.isfinite(value):
            raise RunFailed(f"training diverged at step {self.progress.step + 1} (loss {value}); lower --lr or use --precision fp32")
        return value

    def _end_of_epoch(self, epoch_value: float) -> None:
        """Validate, log, write best.pt / last.pt / history (rank 0), and start a new loss window."""
        p, config = self.progress, self.config
        mean_loss = all_reduce_mean(p.loss_sum, p.loss_n, self.ddp.world)
        broadcast_buffers(self.model, self.ddp.world)  # every rank validates rank 0's model, a share each
        if self.readout_view is not None:  # the read-out's scale first: validation reads with it
            fit_readout(self.model, self.readout_view, self.readout_labels, config.batch_size, self.device, self.precision,
                        config.workers, self.ddp)
        metrics = validation_metrics(self.model, self.val_view, self.shards.labels[self.split.val], self.aus, config.task,
                                     config.batch_size, self.device, self.precision, self.mean_shape, config.workers, self.ddp)
        if self.ddp.main:
            warning = metrics_warning(self.config.task, metrics)
            row = {"epoch": epoch_value, "step": p.step, "train_loss": mean_loss, **metrics, "lr": self.scheduler.get_last_lr()[0],
                   "images_per_s": p.images * self.ddp.world / max(p.seconds, 1e-9), "seconds": p.seconds, "warning": warning or ""}
            p.history.append(row)
            self._write_checkpoints(row, metrics, warning)
            write_history(p.history, self.out, self.config.task)
            if not self.config.quiet:
                console.print(row_text(row), highlight=False)
        p.reset_window()

    def _write_checkpoints(self, row: dict, metrics: dict, warning: str | None) -> None:
        from auhm.models import save_checkpoint

        p = self.progress
        info = {**self.info, "epoch": row["epoch"], "step": p.step, "metrics": metrics, "learning_warning": warning}
        if "presence_threshold" in metrics:  # read by the auhm face backend
            info["presence_threshold"] = metrics["presence_threshold"]
        if is_better(row[self.metric], p.best.get(self.metric), self.metric):
            p.best = row
            save_checkpoint(self.out / "best.pt", self.model, info)
        save_checkpoint(self.out / "last.pt", self.model, info)

    def _save_state(self, finished: bool = False) -> None:
        if self.ddp.main:
            save_run_state(self.out / "resume.pt", self.progress, self.model, self.optimizer, self.scheduler, self.scaler, self.split.name, finished)


def train(config: TrainConfig) -> TrainResult:
    """Train one model (one fold); returns the best epoch and the history. Rank 0 writes the run."""
    if config.resume is not None:
        config = load_run_config(config)
    config.check()
    return Trainer(config).fit()


def row_text(row: dict) -> str:
    parts = [f"epoch {row['epoch']:.2f}", f"step {row['step']}", f"loss {row['train_loss']:.4g}"]
    parts += [f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_") and isinstance(v, float)]
    parts += [f"lr {row['lr']:.2e}", f"{row['images_per_s']:.1f} img/s"]
    return " · ".join(parts)


def backbone_info(backbone) -> dict:
    """The info of an auhm landmark checkpoint given as --backbone (empty for anything else)."""
    if not backbone or str(backbone) == "fan2d" or not Path(str(backbone)).is_file():
        return {}
    from auhm.models.checkpoint import read_checkpoint_info

    try:
        return read_checkpoint_info(backbone)
    except (ValueError, FileNotFoundError):
        return {}


def write_history(history: list[dict], out: Path, task: str) -> None:
    """history.csv and curves.png (training loss and the validation metric per epoch)."""
    from auhm.viz.curves import training_curves

    df = pd.DataFrame(history)
    with atomic_path(out / "history.csv") as tmp:
        df.to_csv(tmp, index=False)
    training_curves(df, "val_nme" if task == "landmarks" else "val_icc", out / "curves.png")
