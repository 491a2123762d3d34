"""One-file checkpoints: weights plus everything needed to rebuild and use the model.

A checkpoint holds the state dict (frozen backbones included, so the backbone file is never
needed again) and an ``info`` dict stored as JSON: method, task, aus, preset, crop,
input_size, map_size, model_options, train_config, auhm_version.
"""

from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import torch

from auhm import __version__
from auhm.io import atomic_path
from auhm.models.base import AUModel
from auhm.models.registry import build_model

FORMAT = "auhm-checkpoint/1"


def model_info(model: AUModel) -> dict:
    """The part of a checkpoint's info that the model itself knows."""
    return {
        "method": model.method,
        "task": "landmarks" if model.method == "landmarks" else "au",
        "aus": list(model.aus),
        "preset": model.preset.name,
        "input_size": model.input_size,
        "map_size": model.map_size,
        "output_kind": model.output_kind,
        "model_options": dict(model.model_options),
        "auhm_version": __version__,
    }


def save_checkpoint(path: str | os.PathLike, model: AUModel, info: dict | None = None) -> Path:
    """Write weights + info atomically (temp file + rename); ``info`` adds crop, train_config, …"""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {**model_info(model), **(info or {})}
    for key in ("method", "aus", "preset", "model_options"):  # what rebuilds the model is the model's
        full[key] = model_info(model)[key]
    payload = {"format": FORMAT, "info_json": json.dumps(full, default=str), "state_dict": model.state_dict()}
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return path


def read_checkpoint_info(path: str | os.PathLike) -> dict:
    return read_checkpoint(path)[1]


# What each task's checkpoints are called, and the command that makes one.
TASKS = {"au": ("an AU checkpoint", "auhm train"), "landmarks": ("a landmark checkpoint", "auhm train --task landmarks")}


def read_checkpoint(path: str | os.PathLike, map_location="cpu", task: str | None = None) -> tuple[dict, dict]:
    """(state dict, info) of an auhm checkpoint, the model not built. FileNotFoundError when
    there is no file, ValueError naming the path when it is no auhm checkpoint or, with ``task``,
    a checkpoint of the other task (what it is and what was expected)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError:  # random bytes, or a pickle of more than weights (unsafe to load)
        raise ValueError(f"{path}: not an auhm checkpoint (not a file of weights)") from None
    except Exception as e:  # truncated file, not a torch file, …
        first = str(e).splitlines()[0][:120] if str(e) else ""
        raise ValueError(f"{path}: not an auhm checkpoint (unreadable, {type(e).__name__}: {first})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ValueError(f"{path}: not an auhm checkpoint")
    info = json.loads(payload["info_json"])
    if task is not None and checkpoint_task(info) != task:
        what, (wanted, command) = TASKS[checkpoint_task(info)][0], TASKS[task]
        raise ValueError(f"{path}: {what} (method {info.get('method')!r}), where {wanted} is needed (one from `{command}`)")
    return payload["state_dict"], info


# A model whose validation says it learned nothing: thresholds on the metrics training records.
MIN_ICC = 0.05  # ICC(3,1) averaged over AUs; a constant or blind predictor scores 0 (or NaN)
MIN_SPREAD = 0.1  # spread of the predictions over that of the labels; below it they are nearly constant
MEAN_SHAPE_MARGIN = 0.9  # a landmark network must beat placing the average face by this factor


def metrics_warning(task: str, metrics: dict) -> str | None:
    """Why validation ``metrics`` say a model learned nothing, with what to try; None when it learned.

    Landmarks: no better than the training set's average face placed in every crop (or, for
    metrics recorded without that baseline, an NME above 0.3). AU models: ICC near 0 or NaN, or
    predictions nearly constant.
    """
    if task == "landmarks":
        nme, baseline = metrics.get("val_nme"), metrics.get("val_nme_mean_shape")
        if nme is None:
            return None
        if baseline is not None and not nme < MEAN_SHAPE_MARGIN * baseline:
            why = f"validation NME {nme:.3f} is no better than the average face placed in every crop ({baseline:.3f})"
        elif baseline is None and not nme < 0.3:
            why = f"validation NME {nme:.3f} (a landmark network that tracks faces is under 0.1)"
        else:
            return None
        return f"this landmark network did not learn: {why}; train longer (--epochs), check --lr, or check the prepared landmarks (auhm heatmaps)"
    icc, spread = metrics.get("val_icc"), metrics.get("val_spread")
    if icc is None:
        return None
    if not icc >= MIN_ICC:
        why = f"validation ICC {icc:.3f} (0 is a constant predictor)"
    elif spread is not None and not spread >= MIN_SPREAD:
        why = f"its predictions are nearly constant (spread {spread:.2f} of the labels')"
    else:
        return None
    return f"this model did not learn: {why}; train longer (--epochs), check --lr and the labels, or start from a trained landmark network (--backbone)"


def learning_warning(info: dict) -> str | None:
    """The warning a checkpoint's recorded validation calls for (None when it learned or was never validated)."""
    if "learning_warning" in info:
        return info["learning_warning"]
    return metrics_warning(checkpoint_task(info), info.get("metrics") or {})


def checkpoint_task(info: dict) -> str:
    """"landmarks" or "au": what the checkpoint's network predicts."""
    return "landmarks" if info.get("task") == "landmarks" or info.get("method") == "landmarks" else "au"


def load_checkpoint(path: str | os.PathLike, map_location="cpu", task: str | None = None) -> tuple[AUModel, dict]:
    """Rebuild the model through build_model and load its weights; returns (model in eval mode, info).

    With ``task`` ("au" or "landmarks"), a checkpoint of the other kind is a ValueError that says
    what it is and what was expected, before any weights are loaded.
    """
    state, info = read_checkpoint(path, map_location, task)
    options = dict(info.get("model_options", {}))
    if "backbone" in options:
        options["pretrained"] = False  # the backbone's weights are in the state dict
    model = build_model(info["method"], info["aus"], info["preset"], **options)
    model.load_state_dict(state)
    return model.to(map_location if isinstance(map_location, (str, torch.device)) else "cpu").eval(), info
