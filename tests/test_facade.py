"""``import auhm``: a light import, and the handful of functions a notebook wants, resolved on first use."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_import_auhm_loads_no_torch_and_no_subpackage():
    code = ("import sys, auhm; heavy = [m for m in ('torch', 'pandas', 'pyarrow', 'cv2') if m in sys.modules]; "
            "sub = sorted(m for m in sys.modules if m.startswith('auhm.')); print(heavy, sub)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[] []"


def test_every_facade_name_resolves_to_the_function_it_names():
    import auhm
    from auhm.infer.annotate import AnnotateConfig, annotate
    from auhm.io import read_labels, read_predictions
    from auhm.metrics import ScoreConfig, au_scores, score
    from auhm.models import build_model, list_methods, load_checkpoint

    expected = {"annotate": annotate, "AnnotateConfig": AnnotateConfig, "build_model": build_model, "list_methods": list_methods,
                "load_checkpoint": load_checkpoint, "au_scores": au_scores, "score": score, "ScoreConfig": ScoreConfig,
                "read_predictions": read_predictions, "read_labels": read_labels}
    assert sorted(auhm.__all__) == sorted(["__version__", *expected])
    for name, value in expected.items():
        assert getattr(auhm, name) is value, name
        assert name in dir(auhm)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        auhm.nope  # noqa: B018
