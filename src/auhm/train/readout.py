"""The AU read-out's scale: one factor per AU that brings the heatmaps' peaks to the labels' scale.

A map trained with the squared loss against a·exp(−‖x − p‖²/a²) peaks below a wherever the AU's
position is uncertain (the loss's optimum is the target blurred by that uncertainty), most for the
narrow maps of low intensities; intensities read as maxima are then compressed towards 0, which
ICC punishes. One least-squares factor per AU, through the origin (0 stays 0), fitted on the
training crops themselves (unaugmented; held-out subjects are never used), restores the scale.
"""

from __future__ import annotations

import numpy as np
import torch

SCALE_RANGE = (0.5, 10.0)  # a factor outside it means the AU was not learned, not that its scale is off
MAX_CROPS = 1024  # training crops the factors are fitted on (evenly spaced over the training set)


def fit_intensity_scale(peaks: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per-AU factor s minimising Σ (s·peak − label)² over the labelled frames; 1 where nothing is labelled."""
    peaks, labels = np.asarray(peaks, np.float64), np.asarray(labels, np.float64)
    labelled = ~np.isnan(labels)
    p, y = np.where(labelled, peaks, 0.0), np.where(labelled, labels, 0.0)
    energy = (p * p).sum(axis=0)
    scale = np.divide((p * y).sum(axis=0), energy, out=np.ones(p.shape[1]), where=energy > 1e-9)
    return np.clip(scale, *SCALE_RANGE)


def training_sample(train_indices: np.ndarray, limit: int = MAX_CROPS) -> np.ndarray:
    """Up to ``limit`` training frames, evenly spaced (every subject and every part of its videos)."""
    if len(train_indices) <= limit:
        return np.asarray(train_indices)
    return np.asarray(train_indices)[np.linspace(0, len(train_indices) - 1, limit).astype(np.int64)]


@torch.no_grad()
def fit_readout(model, view, labels: np.ndarray, batch_size: int, device: torch.device, precision: str, workers: int | None = None,
                ddp=None) -> np.ndarray:
    """Fit ``model.intensity_scale`` on the crops of ``view`` (their labels given); returns the
    factors. Under DDP (``ddp``) each rank predicts its share and every rank fits the same factors."""
    from auhm.train.evaluate import predict_shared

    was_training = model.training
    model.eval()
    try:
        peaks = predict_shared(model, view, batch_size, device, precision, workers, task="au", scaled=False, ddp=ddp)
    finally:
        model.train(was_training)
    scale = fit_intensity_scale(peaks, labels)
    model.intensity_scale.copy_(torch.as_tensor(scale, dtype=model.intensity_scale.dtype))
    return scale
