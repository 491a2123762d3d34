"""Aff-Wild2's left/right annotations mapped onto face tracks, on hand-made prediction tables."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from auhm.cli import app
from auhm.metrics.sides import map_sides, side_name


def tracks(video: str, centres: dict[int, list[float]], width: float = 40.0, extra_rows: int = 0) -> pd.DataFrame:
    """One row per (frame, face) with the box centred at the given x; face ids are track ids."""
    rows = []
    for face, xs in centres.items():
        for frame, x in enumerate(xs):
            rows.append({"video": video, "frame": frame, "face": face, "x0": x - width / 2, "x1": x + width / 2, "AU01": float(face)})
    rows += [{"video": video, "frame": 100 + k, "face": None, "x0": None, "x1": None, "AU01": None} for k in range(extra_rows)]
    return pd.DataFrame(rows).astype({"face": "Int16"})


def test_left_is_the_track_further_left_and_ambiguous_videos_are_named():
    table = pd.concat([
        tracks("a/two.mp4", {3: [300, 310, 305, 300], 7: [100, 90, 95, 100]}),  # 7 is left: mean 96 vs 304
        tracks("b/cross.mp4", {0: [100, 200, 300, 400], 1: [400, 300, 200, 100]}),  # they cross: centres overlap
        tracks("c/one.mp4", {0: [100, 100, 100, 100], 1: [300]}, extra_rows=2),  # the second track is short (1 of 6 frames)
    ])
    mapped, ambiguous = map_sides(table)
    assert sorted(set(mapped.video)) == ["a/two_left.mp4", "a/two_right.mp4"]
    assert mapped.loc[mapped.video == "a/two_left.mp4", "AU01"].tolist() == [7.0] * 4
    assert mapped.loc[mapped.video == "a/two_right.mp4", "AU01"].tolist() == [3.0] * 4
    assert (mapped.face == 0).all()
    assert ambiguous["b/cross.mp4"].startswith("face tracks 0 and 1 overlap")
    assert ambiguous["c/one.mp4"] == "1 long face tracks, not 2"
    assert side_name("x/y/clip.avi", "right") == "x/y/clip_right.avi"


def test_score_maps_sides_onto_tracks_and_reports_the_ambiguous_video(tmp_path):
    pred = pd.concat([tracks("/data/batch2/video5.mp4", {0: [300.0] * 4, 1: [80.0] * 4}),
                      tracks("/data/batch2/video6.mp4", {0: [100, 200, 300, 400], 1: [400, 300, 200, 100]})])
    pred["success"] = True
    pred["AU01"] = np.where(pred.face == 1, [1.0, 0.0, 1.0, 0.0] * 4, [0.0, 0.0, 1.0, 1.0] * 4)
    pred.to_parquet(tmp_path / "p.parquet")
    labels = pd.DataFrame({"video": np.repeat(["batch2/video5_left.mp4", "batch2/video5_right.mp4", "batch2/video6_left.mp4"], 4),
                           "frame": np.tile(np.arange(4), 3),
                           "AU01": np.array([1, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0], np.float32)})
    labels.to_parquet(tmp_path / "l.parquet")
    result = CliRunner().invoke(app, ["score", str(tmp_path / "p.parquet"), "--labels", str(tmp_path / "l.parquet"), "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "s.json").read_text())
    # Track 1 (x 80) is left and its predictions equal video5_left's labels; track 0 equals the right ones.
    assert report["join"]["matched"] == {"batch2/video5_left.mp4": "/data/batch2/video5_left.mp4",
                                         "batch2/video5_right.mp4": "/data/batch2/video5_right.mp4"}
    assert report["occurrence"]["Accuracy"]["AU01"] == 1.0 and report["occurrence"]["n"]["AU01"] == 8
    assert "overlap" in report["join"]["ambiguous"]["batch2/video6_left.mp4"][0]
    assert "ambiguous, left out: batch2/video6_left.mp4" in result.stderr
