"""The README's first examples run on sample_data/: it must stay a valid DISFA-layout clip."""

from pathlib import Path

import numpy as np
import pandas as pd

from auhm.data import load_labels, load_sessions
from auhm.video import VideoReader

SAMPLE = Path(__file__).resolve().parents[1] / "sample_data" / "synth_clip"


def test_sample_clip_reads_as_disfa_with_one_label_per_decoded_frame():
    sessions = list(load_sessions("disfa", SAMPLE))
    assert len(sessions) == 1
    labels = load_labels("disfa", SAMPLE)
    n = sum(len(b) for b in VideoReader(sessions[0].path).batches(32))
    assert n == 80 and len(labels) == 80
    assert labels["frame"].tolist() == list(range(80))
    values = labels.filter(like="AU").to_numpy()
    assert np.nanmax(values) <= 5 and np.nanmin(values) >= 0
    truth = pd.read_parquet(SAMPLE / "auhm_truth" / "LeftVideoSN001_comp.parquet")
    assert len(truth) == 80 and {"x_0", "y_67"} <= set(truth.columns)
