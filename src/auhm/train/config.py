"""Training and evaluation settings, one dataclass each (saved into every checkpoint)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auhm import checks
from auhm.errors import UsageError
from auhm.models.registry import MODELS, default_lr, transfer_methods
from auhm.train.augment import AugmentConfig

# The methods and their default learning rates come from the model registry, where each method
# registers. Paper §5.3 fixes Adam, batch 48 and wd 1e-6 but not the rates; these are the usual
# ones: 1e-3 for layers trained from scratch (scratch HR, the landmark network, the new
# adaptation/attention/reparametrisation layers over a frozen backbone), 1e-4 for finetune (the
# whole pretrained net moves, §4.2 "a small learning rate") and for resnet18 regression.
MODELS.discover()
METHODS = tuple(m for m in MODELS.names() if m != "landmarks")  # the AU methods (--method)
TRANSFER_METHODS = transfer_methods()
DEFAULT_LR = {m: default_lr(m) for m in MODELS.names()}


@dataclass
class TrainConfig:
    data: Path
    out: Path
    method: str = "adaptation"
    task: str = "au"  # "landmarks" trains the landmark network (method "landmarks")
    backbone: Optional[Path] = None  # landmark-network checkpoint for the transfer methods
    fold: Optional[int] = None  # 1-based held-out fold of the manifest
    folds: Optional[int] = None  # train one model per fold, pool out-of-fold predictions
    epochs: int = 10
    batch_size: int = 48
    lr: Optional[float] = None  # None: DEFAULT_LR[method]
    weight_decay: float = 1e-6
    preset: str = "paper"
    device: str = "auto"
    precision: str = "auto"
    workers: Optional[int] = None  # DataLoader processes; None: none on a CPU, most cores beside a GPU (train.batches)
    threads: Optional[int] = None  # CPU threads; None: torch's default (every core)
    follow_load: bool = False  # fewer CPU threads while other processes hold cores (train.threads): faster, but the weights depend on the load
    max_steps: Optional[int] = None
    resume: Optional[Path] = None
    seed: int = 0
    negative_fraction: float = 0.1  # landmarks task: share of shuffled-patch no-face crops
    holdout_fraction: float = 0.2  # corpora without splits: share of subjects held out
    checkpoint_every: int = 200  # steps between mid-epoch resume points
    val_every: Optional[int] = None  # steps between validations inside an epoch (None: at epoch ends only)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    quiet: bool = False

    def __post_init__(self) -> None:
        self.data, self.out = Path(self.data), Path(self.out)
        if self.task == "landmarks":
            self.method = "landmarks"

    @property
    def learning_rate(self) -> float:
        return self.lr if self.lr is not None else default_lr(self.method)

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        from auhm.io import check_writable
        from auhm.models.checkpoint import TASKS

        if self.task not in TASKS:
            raise UsageError(f"--task {self.task}: choose {' or '.join(TASKS)}")
        if self.task != "landmarks" and (self.method == "landmarks" or self.method not in MODELS):
            raise UsageError(f"--method {self.method}: choose one of {', '.join(METHODS)}")
        for option, value in (("--epochs", self.epochs), ("--batch-size", self.batch_size), ("--max-steps", self.max_steps),
                              ("--val-every", self.val_every), ("--fold", self.fold)):
            checks.at_least(value, 1, option)
        checks.at_least(self.folds, 2, "--folds")
        cores = os.cpu_count() or 1
        checks.between(self.threads, 1, cores, "--threads", "the cores of this machine")
        if self.follow_load and self.threads is not None:
            raise UsageError(f"--threads {self.threads} with --follow-load: --follow-load chooses the thread count as the load goes; give one or the other")
        checks.between(self.workers, 0, cores, "--workers", "the cores of this machine")
        checks.finite(self.lr, "--lr", minimum=0)
        checks.finite(self.weight_decay, "weight decay", minimum=0)
        checks.seed(self.seed)
        check_writable(self.out, "--resume" if self.resume is not None else "--out", directory=True)


@dataclass
class EvaluateConfig:
    checkpoint: Path
    data: Path
    split: Optional[str] = None  # None: the checkpoint's validation split
    out: Optional[Path] = None
    batch_size: int = 64
    device: str = "auto"
    precision: str = "auto"
    workers: Optional[int] = None  # DataLoader processes; None: none on a CPU, most cores beside a GPU (train.batches)
    exclude_subjects: tuple[str, ...] = ()  # left out of the scores (default on another corpus: the people both hold)
    quiet: bool = False

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        from auhm.io import check_writable

        checks.at_least(self.batch_size, 1, "--batch-size")
        checks.between(self.workers, 0, os.cpu_count() or 1, "--workers", "the cores of this machine")
        if self.out is not None:
            check_writable(self.out)
