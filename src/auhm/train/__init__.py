"""Training and evaluation of every method of the paper on prepared corpora."""

from auhm.train.augment import AugmentConfig, ShardView, augment
from auhm.train.config import DEFAULT_LR, METHODS, EvaluateConfig, TrainConfig
from auhm.train.device import autocast_context, resolve_device, resolve_precision, use_channels_last

__all__ = [
    "DEFAULT_LR",
    "METHODS",
    "AugmentConfig",
    "EvaluateConfig",
    "ShardView",
    "TrainConfig",
    "augment",
    "autocast_context",
    "resolve_device",
    "resolve_precision",
    "run_training",
    "train",
    "use_channels_last",
]


def __getattr__(name):
    # loop/evaluate import the models package; load them on first use so that annotation code
    # importing auhm.train.device does not pull the training machinery in.
    if name in ("train", "run_training", "train_folds"):
        from auhm.train import loop

        return getattr(loop, name)
    raise AttributeError(name)
