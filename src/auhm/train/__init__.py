"""Training and evaluation of every method of the paper on prepared corpora."""

from auhm.train.augment import AugmentConfig, ShardView, augment
from auhm.train.config import DEFAULT_LR, METHODS, EvaluateConfig, TrainConfig

__all__ = [
    "DEFAULT_LR",
    "METHODS",
    "AugmentConfig",
    "EvaluateConfig",
    "ShardView",
    "TrainConfig",
    "augment",
    "run_training",
    "train",
]


def __getattr__(name):
    # loop imports the models package and torch.distributed: loaded on first use.
    if name in ("train", "run_training", "train_folds"):
        from auhm.train import loop

        return getattr(loop, name)
    raise AttributeError(name)
