"""Training and evaluation settings, one dataclass each (saved into every checkpoint)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from auhm.train.augment import AugmentConfig

METHODS = ("scratch", "finetune", "adaptation", "attention", "reparam", "random-backbone", "resnet18")
TRANSFER_METHODS = ("finetune", "adaptation", "attention", "reparam")

# Default learning rates. Paper §5.3 fixes Adam, batch 48 and wd 1e-6 but not the rates; these
# are the usual ones: 1e-3 for layers trained from scratch (scratch HR, the landmark network, the
# new adaptation/attention/reparametrisation layers over a frozen backbone), 1e-4 for finetune
# (the whole pretrained net moves, §4.2 "a small learning rate") and for resnet18 regression.
DEFAULT_LR = {
    "scratch": 1e-3,
    "landmarks": 1e-3,
    "finetune": 1e-4,
    "adaptation": 1e-3,
    "attention": 1e-3,
    "reparam": 1e-3,
    "random-backbone": 1e-3,
    "resnet18": 1e-4,
}


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
    threads: Optional[int] = None  # CPU threads; None: torch's default, lowered while other processes hold cores (train.threads)
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
        return self.lr if self.lr is not None else DEFAULT_LR[self.method]


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
