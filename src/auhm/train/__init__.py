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
    "train_folds",
]


def __getattr__(name):
    # The trainer imports the models package and torch.distributed: loaded on first use.
    if name == "train":
        from auhm.train.trainer import train

        return train
    if name in ("run_training", "train_folds"):
        from auhm.train import folds

        return getattr(folds, name)
    raise AttributeError(name)
