"""The predictor's traced forward: every model family, at either CPU precision, gives the eager
model's outputs bit for bit at any batch size; a forward that a trace would change runs eagerly."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from auhm.infer.predictor import Predictor
from auhm.models import build_model
from auhm.models.registry import list_methods

AUS = (1, 2, 4)
AU_METHODS = [m for m in list_methods() if m != "landmarks"]  # the landmark network is no AU model


def eager_prediction(predictor: Predictor, crops: np.ndarray):
    """What the predictor gives with its model run eagerly."""
    traced, predictor.forward = predictor.forward, predictor.model
    try:
        return predictor(crops)
    finally:
        predictor.forward = traced


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("method", AU_METHODS)
def test_every_model_runs_traced_and_gives_the_eager_outputs_bit_for_bit(method, precision):
    predictor = Predictor(build_model(method, AUS, preset="small"), {"aus": list(AUS), "method": method}, "cpu", precision)
    assert isinstance(predictor.forward, torch.jit.ScriptModule)
    rng = np.random.default_rng(1)
    for n in (1, 4, 7):
        crops = rng.integers(0, 256, (n, predictor.input_size, predictor.input_size, 3), dtype=np.uint8)
        traced, eager = predictor(crops), eager_prediction(predictor, crops)
        np.testing.assert_array_equal(traced.intensities, eager.intensities)
        assert (traced.landmarks is None) == (eager.landmarks is None) == (method == "random-backbone" or not predictor.has_landmarks)
        if eager.landmarks is not None:
            np.testing.assert_array_equal(traced.landmarks, eager.landmarks)
            np.testing.assert_array_equal(traced.landmark_confidence, eager.landmark_confidence)


class CountsItsBatch(torch.nn.Module):
    """A forward whose Python looks at the batch size: a trace would keep the size it was traced at."""

    output_kind = "regression"
    input_size = 16

    def forward(self, x):
        scale = 2.0 if x.shape[0] == 2 else 1.0
        return {"intensities": x.mean(dim=(1, 2, 3))[:, None].repeat(1, len(AUS)) * scale, "heatmaps": None}


def test_a_forward_a_trace_would_change_runs_eagerly():
    predictor = Predictor(CountsItsBatch(), {"aus": list(AUS), "method": "random-backbone", "input_size": 16}, "cpu", "fp32")
    assert predictor.forward is predictor.model
    crops = np.full((3, 16, 16, 3), 255, np.uint8)
    np.testing.assert_allclose(predictor(crops).intensities, 1.0)
