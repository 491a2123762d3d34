"""The fitted read-out: one least-squares factor per AU on training crops, applied wherever intensities are read."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auhm.models import build_model, load_checkpoint, save_checkpoint
from auhm.models.base import read_intensities
from auhm.train.readout import SCALE_RANGE, fit_intensity_scale, training_sample


def test_the_factor_undoes_a_compressed_read_out_and_keeps_zero_at_zero():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 6, (400, 3)).astype(float)
    peaks = np.stack([0.5 * labels[:, 0], 0.25 * labels[:, 1], labels[:, 2]], 1) + rng.normal(0, 0.01, (400, 3))
    labels[::7, 1] = np.nan  # unlabelled frames take no part
    np.testing.assert_allclose(fit_intensity_scale(peaks, labels), [2.0, 4.0, 1.0], rtol=0.02)
    # least squares through the origin, by hand
    p, y = peaks[:, 0], labels[:, 0]
    assert fit_intensity_scale(peaks, labels)[0] == pytest.approx(np.clip((p * y).sum() / (p * p).sum(), *SCALE_RANGE), rel=1e-12)


def test_an_au_without_signal_or_labels_keeps_factor_one_and_factors_stay_in_range():
    peaks = np.zeros((10, 3))
    peaks[:, 2] = 1e-3
    labels = np.full((10, 3), np.nan)
    labels[:, 2] = 5.0
    assert fit_intensity_scale(peaks, labels).tolist() == [1.0, 1.0, SCALE_RANGE[1]]


def test_training_sample_spans_the_training_set():
    idx = np.arange(100, 5100)
    s = training_sample(idx, limit=1000)
    assert len(s) == 1000 and s[0] == 100 and s[-1] == 5099 and np.all(np.diff(s) > 0)
    assert training_sample(idx[:10]).tolist() == idx[:10].tolist()


def test_the_scale_travels_in_the_checkpoint_and_scales_the_maxima(tmp_path):
    model = build_model("scratch", (1, 2, 4), "small").eval()
    model.intensity_scale.copy_(torch.tensor([2.0, 1.0, 0.5]))
    save_checkpoint(tmp_path / "m.pt", model)
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    maps = torch.zeros(1, 3, 4, 4)
    maps[0, :, 1, 2] = torch.tensor([1.5, 2.0, 4.0])
    assert read_intensities(loaded, {"heatmaps": maps}).tolist() == [[3.0, 2.0, 2.0]]
    assert read_intensities(loaded, {"heatmaps": maps}, scaled=False).tolist() == [[1.5, 2.0, 4.0]]
    maps[0, 0, 1, 2] = 4.0  # clipped to 5 after scaling
    assert read_intensities(loaded, {"heatmaps": maps}).tolist()[0][0] == 5.0
