"""Predictions written as OpenFace 2.2's CSVs and read back by ``auhm score``; py-feat's CSV read as predictions."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.io import read_predictions

AUS = ("AU01", "AU02", "AU12")


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def tables(frames: int = 30):
    rng = np.random.default_rng(1)
    preds, labels = [], []
    for video in ("/data/a/clip1.mp4", "/data/b/clip2.mp4"):
        truth = rng.integers(0, 6, (frames, 3)).astype(np.float32)
        p = pd.DataFrame({"video": video, "frame": np.arange(frames, dtype=np.int32), "timestamp": np.arange(frames) / 30,
                          "face": np.int16(0), "success": True, "confidence": np.float32(0.975),
                          "x0": 1.0, "y0": 2.0, "x1": 50.0, "y1": 60.0})
        for j, au in enumerate(AUS):
            p[au] = np.clip(truth[:, j] + rng.normal(0, 0.7, frames), 0, 5).astype(np.float32)
        p.loc[5, "success"] = False
        p.loc[5, list(AUS)] = np.nan
        preds.append(p)
        labels.append(pd.DataFrame({"video": video.split("/")[-1].split(".")[0], "frame": np.arange(frames), **dict(zip(AUS, truth.T))}))
    return pd.concat(preds, ignore_index=True), pd.concat(labels, ignore_index=True)


def test_openface_files_columns_and_number_format(tmp_path):
    pred, _ = tables()
    pred.to_parquet(tmp_path / "p.parquet")
    code, _, err = run("export", tmp_path / "p.parquet", "--to", "openface", "--out", tmp_path / "of")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "of").iterdir()) == ["clip1.csv", "clip2.csv"]
    lines = (tmp_path / "of" / "clip1.csv").read_text().splitlines()
    assert lines[0] == "frame, face_id, timestamp, confidence, success, AU01_r, AU02_r, AU12_r, AU01_c, AU02_c, AU12_c"
    row = pred.iloc[2]
    r = [f"{row[a]:.2f}" for a in AUS]
    c = [f"{float(row[a] >= 1):.1f}" for a in AUS]
    assert lines[3] == ", ".join(["3", "0", "0.067", f"{np.float32(0.975):.2f}", "1", *r, *c])
    assert lines[6] == f"6, 0, 0.167, {np.float32(0.975):.2f}, 0, 0, 0, 0, 0, 0, 0"  # frame 5 had no face: AUs 0, as OpenFace writes them
    assert len(lines) == 31


def test_export_round_trips_to_the_same_scores(tmp_path):
    pred, labels = tables()
    pred.to_parquet(tmp_path / "p.parquet")
    labels.to_parquet(tmp_path / "l.parquet")
    assert run("export", tmp_path / "p.parquet", "--to", "openface", "--out", tmp_path / "of")[0] == 0
    rounded = pred.copy()
    rounded[list(AUS)] = rounded[list(AUS)].astype(np.float64).round(2)
    rounded.to_parquet(tmp_path / "rounded.parquet")
    scores = {}
    for name, source in (("parquet", tmp_path / "p.parquet"), ("rounded", tmp_path / "rounded.parquet"), ("openface", tmp_path / "of")):
        code, _, err = run("score", source, "--labels", tmp_path / "l.parquet", "--json", tmp_path / f"{name}.json")
        assert code == 0, err
        scores[name] = json.loads((tmp_path / f"{name}.json").read_text())["scores"]
    assert scores["openface"]["n"]["AU01"] == 58  # two videos of 30 frames, frame 5 unscored in each
    for metric in ("ICC", "MSE", "MAE", "PCC", "F1", "n"):
        assert scores["openface"][metric] == pytest.approx(scores["rounded"][metric], abs=1e-6)  # exactly what was written
        assert scores["openface"][metric] == pytest.approx(scores["parquet"][metric], abs=5e-3)  # to the printed digits


def test_plain_csv_and_bad_arguments(tmp_path):
    pred, _ = tables(8)
    pred.to_parquet(tmp_path / "p.parquet")
    assert run("export", tmp_path / "p.parquet", "--to", "csv", "--out", tmp_path / "x.csv")[0] == 0
    back = pd.read_csv(tmp_path / "x.csv")
    assert list(back.columns) == list(pred.columns) and len(back) == 16
    np.testing.assert_allclose(back["AU02"], pred["AU02"], atol=1e-6)
    code, _, err = run("export", tmp_path / "p.parquet", "--to", "feat", "--out", tmp_path / "y")
    assert code == 2 and "--to feat: choose one of openface, csv" in err
    code, _, err = run("export", tmp_path / "none.parquet", "--to", "csv", "--out", tmp_path / "y")
    assert code == 2 and "none.parquet: no such file" in err


def test_pyfeat_csv_keeps_the_largest_face_and_scores(tmp_path):
    rows = []
    for frame in range(3):
        rows.append({"FaceRectX": 10, "FaceRectY": 10, "FaceRectWidth": 50, "FaceRectHeight": 60, "FaceScore": 0.99,
                     "AU01": 0.1 * (frame + 1), "AU12": 0.9, "input": "/v/talk.mp4", "frame": frame, "approx_time": frame / 25})
        rows.append({"FaceRectX": 200, "FaceRectY": 10, "FaceRectWidth": 20, "FaceRectHeight": 20, "FaceScore": 0.8,
                     "AU01": 0.99, "AU12": 0.0, "input": "/v/talk.mp4", "frame": frame, "approx_time": frame / 25})
    rows.append({"FaceRectX": np.nan, "FaceRectY": np.nan, "FaceRectWidth": np.nan, "FaceRectHeight": np.nan, "FaceScore": np.nan,
                 "AU01": np.nan, "AU12": np.nan, "input": "/v/talk.mp4", "frame": 3, "approx_time": 0.12})
    pd.DataFrame(rows).to_csv(tmp_path / "feat.csv")  # with pandas' index column, as py-feat's Fex writes it
    pred = read_predictions(tmp_path / "feat.csv")
    assert pred["frame"].tolist() == [0, 1, 2, 3] and pred["success"].tolist() == [True, True, True, False]
    np.testing.assert_allclose(pred["AU01"][:3], [0.1, 0.2, 0.3])  # the 50×60 face, not the 20×20 one
    assert np.isnan(pred["AU01"][3]) and pred["x1"][0] == 60
    labels = pd.DataFrame({"video": "talk", "frame": range(4), "AU01": [0.0, 1, 1, 0], "AU12": [1.0, 1, 0, 1]})
    labels.to_parquet(tmp_path / "l.parquet")
    code, out, err = run("score", tmp_path / "feat.csv", "--labels", tmp_path / "l.parquet", "--threshold", "0.5", "--json", tmp_path / "s.json")
    assert code == 0, err
    occ = json.loads((tmp_path / "s.json").read_text())["occurrence"]
    # AU01 over frames 0-2: labels 0, 1, 1 against 0.1, 0.2, 0.3 → both present frames outrank the absent one: AUC 1.
    assert occ["AUC"]["AU01"] == 1.0 and occ["n"]["AU01"] == 3 and occ["Base rate"]["AU12"] == pytest.approx(2 / 3)
