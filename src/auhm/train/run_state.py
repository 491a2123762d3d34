"""A run directory's resumable state and its saved configuration.

``resume.pt`` holds the optimiser, scheduler and RNG states and the sampler position; it is
written at epoch ends, every ``checkpoint_every`` steps and when a run stops early, so a killed
run continues exactly where the last write left it.
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from auhm.errors import UsageError
from auhm.io import atomic_path
from auhm.train.augment import AugmentConfig
from auhm.train.config import TrainConfig

# Runtime settings a resumed run may change; everything else comes from the run's config.json.
RUNTIME_FIELDS = ("device", "precision", "workers", "threads", "max_steps", "quiet", "checkpoint_every", "val_every")


@dataclass
class Progress:
    """Where a run is and what it has measured since the last validation."""

    epoch: int = 0
    batch: int = 0  # batches done in the current epoch
    step: int = 0
    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=dict)
    loss_sum: float = 0.0
    loss_n: int = 0
    seconds: float = 0.0
    images: int = 0

    def add_step(self, loss: float, images: int, seconds: float) -> None:
        self.loss_sum, self.loss_n = self.loss_sum + loss, self.loss_n + 1
        self.images, self.seconds = self.images + images, self.seconds + seconds
        self.step, self.batch = self.step + 1, self.batch + 1

    def reset_window(self) -> None:
        self.loss_sum, self.loss_n, self.seconds, self.images = 0.0, 0, 0.0, 0


def rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_run_state(path: Path, progress: Progress, model, optimizer, scheduler, scaler, val_split: str, finished: bool = False) -> None:
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "scaler": scaler.state_dict(),
        "rng": rng_state(),
        "epoch": progress.epoch,
        "batch": progress.batch,
        "step": progress.step,
        "history": progress.history,
        "best": progress.best,
        "partial": (progress.loss_sum, progress.loss_n, progress.seconds, progress.images),
        "finished": finished,
        "val_split": val_split,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_run_state(path: Path) -> dict | None:
    """The saved state of a run (written by this code: full unpickling), or None."""
    return torch.load(path, map_location="cpu", weights_only=False) if path.exists() else None


def restore_run_state(state: dict, model, optimizer, scheduler, scaler) -> Progress:
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    scheduler.load_state_dict(state["scheduler"])
    scaler.load_state_dict(state["scaler"])
    set_rng_state(state["rng"])
    loss_sum, loss_n, seconds, images = state["partial"]
    return Progress(state["epoch"], state["batch"], state["step"], state["history"], state["best"], loss_sum, loss_n, seconds, images)


def config_dict(config: TrainConfig) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(config), default=str))


def saved_config(run: Path) -> dict:
    """The config.json of a run directory (a usage error when it is not one)."""
    saved = Path(run) / "config.json"
    if not saved.exists():
        raise UsageError(f"--resume {run}: no config.json (not an auhm run directory)")
    return json.loads(saved.read_text())


def load_run_config(config: TrainConfig) -> TrainConfig:
    """The saved config of the run being resumed, with this invocation's runtime settings."""
    d = saved_config(config.resume)
    d["augment"] = AugmentConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in d["augment"].items()})
    d.update({k: getattr(config, k) for k in RUNTIME_FIELDS})
    d["resume"] = Path(config.resume)
    d["out"] = Path(config.resume)
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in d.items() if k in known})
