"""``auhm evaluate`` on another corpus: the AUs both code, the ones left out, the people both hold,
with a stand-in model whose answers are known (AU j = 5 × the crop's mean of colour channel j)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

import auhm.models
from auhm.cli import app
from auhm.data.overlap import shared_subjects
from auhm.data.shards import ShardRows
from helpers import INFO, StandInAU

# Two subjects of a prepared DISFA+ corpus coding AU1, AU2, AU4; frame k of each is a crop of one colour.
FRAMES = 4


def colour(k: int) -> tuple[int, int, int]:
    return (51 * k, 102, 0)  # → AU01 = k, AU02 = 2, AU12 = 0 from the stand-in


LABELS = {"SN001": [[5, 5, 5]] * FRAMES, "SN099": [[0, 2, 1], [1, 2, 1], [2, 2, 1], [4, 3, 1]]}


def prepared(root) -> None:
    (root / "shards").mkdir(parents=True)
    videos = {}
    for subject, labels in LABELS.items():
        rows = ShardRows(f"Images/{subject}/A1_AU1_TrailNo_1", subject, "part1", (1, 2, 4))
        for k in range(FRAMES):
            crop = np.zeros((64, 64, 3), np.uint8) + np.array(colour(k), np.uint8)
            rows.add(k, crop, np.zeros((68, 2)), np.array([[1, 0, 0], [0, 1, 0]], np.float32), np.array(labels[k], np.float32))
        rows.write(root / "shards" / f"{subject}.parquet", {"kind": "disfa-plus"})
        videos[f"Images/{subject}/A1_AU1_TrailNo_1"] = {"subject": subject, "split": "part1"}
    (root / "manifest.json").write_text(json.dumps({"kind": "disfa-plus", "aus": [1, 2, 4], "crop": {"size": 64}, "videos": videos,
                                                    "splits": {"part1": list(LABELS)}, "folds": ["part1"]}))


@pytest.fixture
def standin(monkeypatch, tmp_path):
    info = {**INFO, "task": "au", "corpus": "disfa", "train_subjects": ["SN001", "SN002"]}
    monkeypatch.setattr(auhm.models, "load_checkpoint", lambda path: (StandInAU(), dict(info)))
    ckpt = tmp_path / "disfa.pt"
    ckpt.write_bytes(b"stand-in")
    return ckpt, info


def evaluate(*args):
    return CliRunner().invoke(app, ["evaluate", *map(str, args), "--device", "cpu", "--precision", "fp32", "-q"])


def test_scores_the_shared_aus_names_the_others_and_leaves_out_the_people_both_hold(tmp_path, standin):
    prepared(tmp_path / "work")
    result = evaluate(standin[0], tmp_path / "work", "--out", tmp_path / "p.parquet")
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "trained on disfa, evaluated on disfa-plus: scoring the AUs both code (AU01, AU02)" in text
    assert "AUs left out, not coded by the corpus: AU12" in text and "AUs left out, not predicted by the checkpoint: AU04" in text
    assert "subjects left out (the people disfa and disfa-plus share): SN001" in text
    import pandas as pd

    pred = pd.read_parquet(tmp_path / "p.parquet")
    assert list(pred.columns[-2:]) == ["AU01", "AU02"] and set(pred.video) == {"Images/SN099/A1_AU1_TrailNo_1"}
    # By hand: AU01 predicted 0, 1, 2, 3 against 0, 1, 2, 4 → MSE 1/4; AU02 2, 2, 2, 2 against 2, 2, 2, 3 → MSE 1/4.
    np.testing.assert_allclose(pred["AU01"], [0, 1, 2, 3], atol=0.03)
    assert "0.25" in result.output.split("AU01")[-1].split("\n")[0]


def test_exclude_subjects_by_hand_and_bad_ids_are_a_usage_error(tmp_path, standin):
    prepared(tmp_path / "work")
    result = evaluate(standin[0], tmp_path / "work", "--exclude-subjects", "sn099", "--out", tmp_path / "p.parquet")
    assert result.exit_code == 0, result.output
    assert "subjects left out (--exclude-subjects): SN099" in " ".join(result.output.split())
    import pandas as pd

    assert set(pd.read_parquet(tmp_path / "p.parquet").video) == {"Images/SN001/A1_AU1_TrailNo_1"}
    bad = evaluate(standin[0], tmp_path / "work", "--exclude-subjects", "SN555")
    assert bad.exit_code == 2 and "--exclude-subjects SN555: not subjects of this corpus" in bad.output


def test_the_pair_rule():
    assert shared_subjects("disfa", "disfa-plus", ["SN001", "SN099"], ["SN001", "SN002"]) == ["SN001"]
    assert shared_subjects("disfa", "disfa-plus", ["SN001", "SN099"]) == ["SN001"]  # SN001 is a DISFA subject
    assert shared_subjects("fera2017", "bp4d", ["F001", "M002"]) == ["F001", "M002"]
    assert shared_subjects("disfa", "bp4d", ["F001"], ["F001"]) == [] and shared_subjects(None, "bp4d", ["F001"]) == []
