"""Occurrence scoring of 0/1 labels (F1, accuracy, AUC beside the base rate), against hand-counted values."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.metrics.occurrence import auc, is_occurrence, occurrence_scores

# Six frames of one AU: labels and predicted intensities.
TRUTH = [1, 0, 1, 1, 0, 0]
PRED = [2.0, 0.5, 0.8, 3.0, 1.5, 0.0]
# By hand at threshold 1: said present on frames 0, 3, 4 → tp 2 (0, 3), fp 1 (4), fn 1 (2), 4 of 6 right.
# AUC: of the 9 (present, absent) pairs the present frame scores higher in 3 (2.0) + 2 (0.8) + 3 (3.0) = 8.
F1, ACCURACY, AUC, BASE = 4 / 6, 4 / 6, 8 / 9, 0.5


def test_hand_counted_scores():
    scores = occurrence_scores(np.array([TRUTH, [1, 1, 0, 0, np.nan, 0]], float).T, np.array([PRED, PRED], float).T, (1, 2))
    assert scores.loc[["F1", "Accuracy", "AUC", "Base rate", "n"], "AU01"].tolist() == pytest.approx([F1, ACCURACY, AUC, BASE, 6])
    # AU02, frame 4 unlabelled: said 0, 3 present; labels 0, 1 present → tp 1, fp 1, fn 1; pairs (2.0|0.5: 1.0|0.8, 3.0, 0.0) → 2 + 1 of 6.
    assert scores.loc[["F1", "Accuracy", "AUC", "Base rate", "n"], "AU02"].tolist() == pytest.approx([0.5, 3 / 5, 3 / 6, 2 / 5, 5])
    assert scores.loc["AUC", "Avg."] == pytest.approx((AUC + 0.5) / 2)


def test_auc_ties_count_half_and_one_class_is_undefined():
    assert auc(np.array([1, 0], bool), np.array([1.0, 1.0])) == 0.5
    assert np.isnan(auc(np.array([1, 1], bool), np.array([0.0, 1.0])))


def test_occurrence_is_told_from_intensity():
    assert is_occurrence(np.array([[0, 1], [np.nan, 1]]))
    assert not is_occurrence(np.array([[0, 1], [2, 1]])) and not is_occurrence(np.array([[1.0], [1.0]]))


def test_score_reports_occurrence_and_marks_intensity_metrics(tmp_path):
    frames = np.arange(6)
    pd.DataFrame({"video": "clip", "frame": frames, "AU01": np.array(TRUTH, np.float32)}).to_parquet(tmp_path / "l.parquet")
    pd.DataFrame({"video": "clip.mp4", "frame": frames, "success": True, "AU01": np.array(PRED, np.float32)}).to_parquet(tmp_path / "p.parquet")
    result = CliRunner().invoke(app, ["score", str(tmp_path / "p.parquet"), "--labels", str(tmp_path / "l.parquet"), "--json", str(tmp_path / "s.json")],
                                env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "Occurrence (0/1 labels): AU scores on 6 matched frames" in text
    assert "intensity metrics, of little meaning on 0/1 labels: AU scores on 6 frames, each with a prediction and a label" in text
    row = next(line.split() for line in result.stdout.splitlines() if line.startswith("AU01") and len(line.split()) == 6)
    assert row[1:] == [f"{F1:.2f}", f"{ACCURACY:.2f}", f"{AUC:.2f}", f"{BASE:.2f}", "6"]
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["labels"] == "occurrence" and report["occurrence"]["AUC"]["AU01"] == pytest.approx(AUC)
