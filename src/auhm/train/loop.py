"""Training: subject-independent splits, the epoch loop, validation, checkpoints, resume, k-fold, DDP.

A run directory holds ``best.pt`` and ``last.pt`` (model checkpoints, all ``annotate`` needs),
``resume.pt`` (optimiser, scheduler, RNG states and the sampler position, written at epoch ends,
every ``checkpoint_every`` steps and when stopped), ``config.json``, ``history.csv`` and
``curves.png``. Under ``torchrun`` every rank trains on its shard of each epoch's permutation and
only rank 0 validates and writes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist

from auhm.console import console, progress
from auhm.data.shards import ShardDataset
from auhm.device import autocast_context, grad_scaler, model_input, resolve_device, resolve_precision, use_channels_last
from auhm.errors import UsageError
from auhm.io import atomic_path, write_json_atomic
from auhm.metrics import au_scores
from auhm.targets.heatmaps import au_heatmaps, au_target_mask, landmark_heatmaps, masked_mse
from auhm.train.augment import ShardView
from auhm.train.batches import batch_loader
from auhm.train.config import METHODS, TRANSFER_METHODS, TrainConfig
from auhm.train.corpus import Split, load_corpus, split_corpus
from auhm.train.evaluate import landmark_nme, predict, prediction_frame, presence_threshold

# Runtime settings a resumed run may change; everything else comes from the run's config.json.
RUNTIME_FIELDS = ("device", "precision", "workers", "max_steps", "quiet", "checkpoint_every")


# ── sampling ───────────────────────────────────────────────────────────────────────────────
class EpochBatches:
    """Batches of (position, epoch) keys: one seeded permutation per epoch, sharded over ranks.

    Does DistributedSampler's job (each rank a disjoint, equal share), plus a start batch so that
    a resumed run skips exactly the batches already trained on.
    """

    def __init__(self, n: int, batch_size: int, seed: int, rank: int = 0, world: int = 1):
        self.n, self.batch_size, self.seed, self.rank, self.world = n, batch_size, seed, rank, world
        self.per_rank = n // world if world > 1 else n
        self.drop_last = self.per_rank >= batch_size  # a lone sample would break BatchNorm
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        self.epoch, self.start = epoch, start

    def batches_per_epoch(self) -> int:
        return self.per_rank // self.batch_size if self.drop_last else math.ceil(self.per_rank / self.batch_size)

    def __len__(self) -> int:
        return self.batches_per_epoch() - self.start

    def __iter__(self):
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
        mine = order[self.rank :: self.world][: self.per_rank]
        for b in range(self.start, self.batches_per_epoch()):
            yield [(int(p), self.epoch) for p in mine[b * self.batch_size : (b + 1) * self.batch_size]]


# ── the model's loss ───────────────────────────────────────────────────────────────────────
def batch_to_device(batch: dict, device: torch.device, channels_last: bool) -> tuple[torch.Tensor, dict]:
    """uint8 HWC crops → float B×3×S×S in [0, 1] on the device (converted there: 4× less to copy)."""
    images = model_input(batch["image"], device, channels_last)
    rest = {k: batch[k].to(device, non_blocking=True) for k in ("landmarks", "labels", "negative")}
    return images, rest


def training_loss(outputs: dict, batch: dict, model, task: str) -> torch.Tensor:
    """Masked heatmap MSE against targets built here from (landmarks, intensities); regression: masked MSE."""
    landmarks, labels = batch["landmarks"].float(), batch["labels"].float()
    size = model.input_size
    if task == "landmarks":
        target = landmark_heatmaps(landmarks, size, model.map_size) * (~batch["negative"]).float()[:, None, None, None]
        return torch.nn.functional.mse_loss(outputs["heatmaps"].float(), target)
    mask = au_target_mask(labels)
    if model.output_kind == "regression":
        return masked_mse(outputs["intensities"].float(), torch.nan_to_num(labels), mask)
    target = au_heatmaps(landmarks, labels, model.aus, size, model.map_size)
    return masked_mse(outputs["heatmaps"].float(), target, mask)


def train_step(net, model, images: torch.Tensor, batch: dict, optimizer, scaler, device: torch.device, precision: str, task: str) -> torch.Tensor:
    """One optimisation step (forward under autocast, loss in fp32, scaled backward); returns the loss."""
    with autocast_context(device, precision):
        outputs = net(images)
    loss = training_loss(outputs, batch, model, task)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return loss


# ── distributed ────────────────────────────────────────────────────────────────────────────
@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0


def init_distributed(device_name: str) -> Dist:
    """torchrun sets WORLD_SIZE/RANK/LOCAL_RANK; gloo on CPU, nccl on GPUs."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    if not dist.is_initialized():
        backend = "nccl" if device_name != "cpu" and torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend)
    return Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


# ── the run ────────────────────────────────────────────────────────────────────────────────
@dataclass
class TrainResult:
    out: Path
    best: dict  # the best epoch's history row
    history: pd.DataFrame
    step_losses: list[float] = field(default_factory=list)  # every step of this invocation (rank 0)
    val_split: str = ""


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _atomic_torch_save(obj, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def config_dict(config: TrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def load_run_config(config: TrainConfig) -> TrainConfig:
    """The saved config of the run being resumed, with this invocation's runtime settings."""
    saved = Path(config.resume) / "config.json"
    if not saved.exists():
        raise UsageError(f"--resume {config.resume}: no config.json (not an auhm run directory)")
    d = json.loads(saved.read_text())
    from auhm.train.augment import AugmentConfig

    d["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["augment"].items()})
    d.update({k: getattr(config, k) for k in RUNTIME_FIELDS})
    d["resume"] = Path(config.resume)
    d["out"] = Path(config.resume)
    return TrainConfig(**d)


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
    elif config.method not in METHODS + ("landmarks",):
        raise UsageError(f"--method {config.method}: choose one of {', '.join(METHODS)}")
    return build_model(config.method, aus, config.preset, **options)


def train(config: TrainConfig) -> TrainResult:
    """Train one model (one fold); returns the best epoch and the history. Rank 0 writes the run."""
    if config.resume is not None:
        config = load_run_config(config)
    ddp = init_distributed(config.device)
    device = resolve_device(config.device)
    if device.type == "cuda" and ddp.world > 1:
        device = torch.device("cuda", ddp.local_rank)
        torch.cuda.set_device(device)
    precision = resolve_precision(device, config.precision)
    channels_last = use_channels_last(device, precision)
    out = Path(config.out)
    resume_path = out / "resume.pt"
    state = torch.load(resume_path, map_location="cpu", weights_only=False) if config.resume is not None and resume_path.exists() else None
    if state is not None and state.get("finished"):
        return _finished_result(out, state)

    corpus = load_corpus(config.data)
    shards = corpus.shards
    aus = list(shards.aus)
    split = split_corpus(corpus.manifest, shards, config.fold, config.folds, config.seed, config.holdout_fraction)
    torch.manual_seed(config.seed)
    np.random.seed(config.seed)
    random.seed(config.seed)
    model = build_run_model(config, aus).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=config.learning_rate, weight_decay=config.weight_decay)
    scaler = grad_scaler(device, precision)
    crop = corpus.manifest.get("crop") or {"size": corpus.crop_size}
    if ddp.main:
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(config_dict(config), out / "config.json")

    train_view = ShardView(shards, split.train, model.input_size, config.augment, config.seed, config.negative_fraction if config.task == "landmarks" else 0.0)
    val_view = ShardView(shards, split.val, model.input_size)
    sampler = EpochBatches(len(train_view), config.batch_size, config.seed, ddp.rank, ddp.world)
    steps_per_epoch = sampler.batches_per_epoch()
    total_steps = config.epochs * steps_per_epoch
    # Cosine over the whole run, stepped per step; --max-steps only stops early (like a kill).
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(1, total_steps))
    loader = batch_loader(train_view, device, config.workers, batch_sampler=sampler, seed=config.seed, world=ddp.world)
    net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) if ddp.world > 1 else model

    epoch, start_batch, step = 0, 0, 0
    history: list[dict] = []
    best: dict = {}
    loss_sum, loss_n, seconds, images = 0.0, 0, 0.0, 0
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])
        epoch, start_batch, step = state["epoch"], state["batch"], state["step"]
        history, best = state["history"], state["best"]
        loss_sum, loss_n, seconds, images = state["partial"]

    info = {
        "method": config.method,
        "task": config.task,
        "aus": aus,
        "preset": config.preset,
        "crop": crop,
        "input_size": model.input_size,
        "train_config": config_dict(config),
        "val_split": split.name,
        "val_subjects": split.val_subjects,
        "fold": config.fold,
    }
    backbone_info = _backbone_info(config.backbone)
    if "presence_threshold" in backbone_info:  # lets annotation tell a lost face from the backbone's maps
        info["backbone_presence_threshold"] = backbone_info["presence_threshold"]

    def save_state(finished: bool = False) -> None:
        _atomic_torch_save(
            {
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                "rng": _rng_state(),
                "epoch": epoch,
                "batch": batch_in_epoch,
                "step": step,
                "history": history,
                "best": best,
                "partial": (loss_sum, loss_n, seconds, images),
                "finished": finished,
                "val_split": split.name,
            },
            resume_path,
        )

    def end_of_epoch(epoch_value: float) -> None:
        nonlocal best, loss_sum, loss_n, seconds, images
        mean_loss = loss_sum / max(loss_n, 1)
        if ddp.world > 1:
            t = torch.tensor([loss_sum, float(loss_n)], dtype=torch.float64)
            dist.all_reduce(t)
            mean_loss = float(t[0] / t[1].clamp_min(1))
        if ddp.main:
            metrics = validate(model, val_view, shards, split, aus, config, device, precision)
            row = {"epoch": epoch_value, "step": step, "train_loss": mean_loss, **metrics, "lr": scheduler.get_last_lr()[0], "images_per_s": images * ddp.world / max(seconds, 1e-9), "seconds": seconds}
            history.append(row)
            key = "val_nme" if config.task == "landmarks" else "val_icc"
            ckpt_info = {**info, "epoch": epoch_value, "step": step, "metrics": metrics}
            if "presence_threshold" in metrics:  # read by the auhm face backend
                ckpt_info["presence_threshold"] = metrics["presence_threshold"]
            from auhm.models import save_checkpoint

            if _is_better(row[key], best.get(key), key):
                best = row
                save_checkpoint(out / "best.pt", model, ckpt_info)
            save_checkpoint(out / "last.pt", model, ckpt_info)
            write_history(history, out, config.task)
            if not config.quiet:
                console.print(_row_text(row), highlight=False)
        loss_sum, loss_n, seconds, images = 0.0, 0, 0.0, 0

    step_losses: list[float] = []
    stopped = False
    batch_in_epoch = start_batch
    model.train()
    with progress(config.quiet or not ddp.main) as bar:
        task_id = bar.add_task(f"train {config.method}", total=total_steps, completed=step, unit="step")
        while epoch < config.epochs and not stopped:
            sampler.set_epoch(epoch, start_batch)
            batch_in_epoch = start_batch
            tick = time.perf_counter()
            for batch in loader:
                images_t, rest = batch_to_device(batch, device, channels_last)
                loss = train_step(net, model, images_t, rest, optimizer, scaler, device, precision, config.task)
                scheduler.step()
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise RuntimeError(f"training diverged at step {step} (loss {value}); lower --lr or use --precision fp32")
                step_losses.append(value)
                loss_sum, loss_n, images = loss_sum + value, loss_n + 1, images + images_t.shape[0]
                step += 1
                batch_in_epoch += 1
                bar.update(task_id, advance=1)
                now = time.perf_counter()
                seconds, tick = seconds + now - tick, now
                if config.max_steps is not None and step >= config.max_steps:
                    stopped = True
                    break
                if ddp.main and config.checkpoint_every and step % config.checkpoint_every == 0:
                    save_state()
            if stopped and batch_in_epoch < steps_per_epoch:
                end_of_epoch(epoch + batch_in_epoch / steps_per_epoch)
                if ddp.main:
                    save_state()
                break
            epoch, start_batch, batch_in_epoch = epoch + 1, 0, 0
            end_of_epoch(float(epoch))
            if ddp.main:
                save_state(finished=epoch >= config.epochs)
    if ddp.world > 1:
        dist.barrier()
    return TrainResult(out, best, pd.DataFrame(history), step_losses, split.name)


def _is_better(value: float, current: float | None, key: str) -> bool:
    """NaN never beats a number (a constant predictor's ICC is NaN); NME is lower-better."""
    if not np.isfinite(value):
        return current is None
    if current is None or not np.isfinite(current):
        return True
    return value < current if key == "val_nme" else value > current


def _finished_result(out: Path, state: dict) -> TrainResult:
    return TrainResult(out, state["best"], pd.DataFrame(state["history"]), [], state.get("val_split", ""))


def _row_text(row: dict) -> str:
    parts = [f"epoch {row['epoch']:.2f}", f"step {row['step']}", f"loss {row['train_loss']:.4g}"]
    parts += [f"{k} {v:.4g}" for k, v in row.items() if k.startswith("val_")]
    parts += [f"lr {row['lr']:.2e}", f"{row['images_per_s']:.1f} img/s"]
    return " · ".join(parts)


@torch.no_grad()
def validate(model, view: ShardView, shards: ShardDataset, split: Split, aus, config: TrainConfig, device, precision) -> dict:
    """Held-out subjects: ICC(3,1) and MSE (averaged over AUs) or, for landmarks, the NME."""
    was_training = model.training
    model.eval()
    try:
        preds = predict(model, view, config.batch_size, device, precision, workers=0, task=config.task)
    finally:
        model.train(was_training)
    if config.task == "landmarks":
        was_training = model.training
        model.eval()
        try:
            threshold = presence_threshold(model, view, device, precision)
        finally:
            model.train(was_training)
        nme = landmark_nme(preds, np.stack([view[i]["landmarks"] for i in range(len(view))]))
        return {"val_nme": nme, "presence_threshold": threshold}
    scores = au_scores(shards.labels[split.val], preds, aus)
    return {"val_icc": float(scores.loc["ICC", "Avg."]), "val_mse": float(scores.loc["MSE", "Avg."])}


def _backbone_info(backbone) -> dict:
    """The info of an auhm landmark checkpoint given as --backbone (empty for anything else)."""
    if not backbone or str(backbone) == "fan2d" or not Path(str(backbone)).is_file():
        return {}
    from auhm.models.checkpoint import read_checkpoint_info

    try:
        return read_checkpoint_info(backbone)
    except Exception:
        return {}


def write_history(history: list[dict], out: Path, task: str) -> None:
    """history.csv and curves.png (training loss and the validation metric per epoch)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    df = pd.DataFrame(history)
    with atomic_path(out / "history.csv") as tmp:
        df.to_csv(tmp, index=False)
    key = "val_nme" if task == "landmarks" else "val_icc"
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.2))
    a.plot(df["epoch"], df["train_loss"], marker="o")
    a.set(xlabel="epoch", ylabel="training loss", yscale="log" if (df["train_loss"] > 0).all() else "linear")
    b.plot(df["epoch"], df[key], marker="o", color="tab:orange")
    b.set(xlabel="epoch", ylabel={"val_nme": "validation NME (inter-ocular)", "val_icc": "validation ICC(3,1), mean over AUs"}[key])
    fig.tight_layout()
    fig.savefig(out / "curves.png", dpi=100)
    plt.close(fig)


# ── k-fold ─────────────────────────────────────────────────────────────────────────────────
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
    k = config.folds
    ddp = init_distributed(config.device)
    if ddp.main:
        write_json_atomic(config_dict(config), Path(config.out) / "config.json")
    results = []
    for fold in range(1, k + 1):
        fold_dir = Path(config.out) / f"fold{fold}"
        resume = fold_dir if config.resume is not None and (fold_dir / "config.json").exists() else None
        results.append(train(dataclasses.replace(config, fold=fold, out=fold_dir, resume=resume)))
    corpus = load_corpus(config.data)
    shards = corpus.shards
    device = resolve_device(config.device)
    precision = resolve_precision(device, config.precision)
    frames, truth, preds = [], [], []
    from auhm.models import load_checkpoint

    for fold, result in enumerate(results, 1):
        split = split_corpus(corpus.manifest, shards, fold, k, config.seed, config.holdout_fraction)
        model, info = load_checkpoint(result.out / "last.pt")
        model.to(device).eval()
        p = predict(model, ShardView(shards, split.val, model.input_size), config.batch_size, device, precision, config.workers, "au", config.quiet)
        labelled = ~np.isnan(shards.labels[split.val]).all(axis=1)
        frames.append(prediction_frame(corpus, split.val[labelled], p[labelled], shards.aus))
        truth.append(shards.labels[split.val][labelled])
        preds.append(p[labelled])
    from auhm.io import prediction_schema, write_parquet_atomic

    table = pd.concat(frames, ignore_index=True).sort_values(["video", "frame"], kind="stable")
    path = Path(config.out) / "oof_predictions.parquet"
    if ddp.main:
        write_parquet_atomic(table, path, schema=prediction_schema(shards.aus, {"protocol": f"{k}-fold out-of-fold, last.pt of each fold", "method": config.method}))
    scores = au_scores(np.concatenate(truth), np.concatenate(preds), shards.aus)
    return FoldsResult(Path(config.out), scores, path, results)


def run_training(config: TrainConfig) -> TrainResult | FoldsResult:
    """The entry point of ``auhm train``: k-fold when --folds is given, else one model."""
    if config.task not in ("au", "landmarks"):
        raise UsageError(f"--task {config.task}: choose au or landmarks")
    k_fold = bool(config.folds)
    if config.resume is not None:
        saved = Path(config.resume) / "config.json"
        if not saved.exists():
            raise UsageError(f"--resume {config.resume}: no config.json (not an auhm run directory)")
        d = json.loads(saved.read_text())
        k_fold = bool(d.get("folds")) and d.get("fold") is None
    try:
        return train_folds(config) if k_fold else train(config)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
