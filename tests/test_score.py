"""`auhm score` and `auhm plot` on small generated tables: joins, cleaning, reports, files, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.data.corpora import subject_of
from auhm.metrics import au_scores, match_videos
from auhm.metrics.report import ScoreConfig, score_frames

AUS = ("AU01", "AU02", "AU04")


def make_tables(n_videos=4, frames=80, seed=0, label_name="vid{v}", pred_name="/data/clips/vid{v}.mp4",
                extra_label_frames=0):
    """Predictions and labels of ``n_videos`` videos; labels = truth, predictions = truth + noise."""
    rng = np.random.default_rng(seed)
    preds, labels = [], []
    for v in range(n_videos):
        truth = rng.integers(0, 6, (frames + extra_label_frames, len(AUS))).astype(np.float32)
        noisy = np.clip(truth[:frames] + rng.normal(0, 0.8, (frames, len(AUS))), 0, 5).astype(np.float32)
        p = pd.DataFrame({"video": pred_name.format(v=v), "frame": np.arange(frames, dtype=np.int32),
                          "timestamp": np.arange(frames) / 25.0, "face": np.int16(0), "success": True})
        lab = pd.DataFrame({"video": label_name.format(v=v), "frame": np.arange(frames + extra_label_frames)})
        for j, au in enumerate(AUS):
            p[au] = noisy[:, j]
            lab[au] = truth[:, j]
        preds.append(p)
        labels.append(lab)
    return pd.concat(preds, ignore_index=True), pd.concat(labels, ignore_index=True)


def run(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result.exit_code, result.stdout, result.stderr


def test_score_joins_by_stem_and_matches_direct_scores(tmp_path):
    pred, labels = make_tables()
    pred.to_parquet(tmp_path / "pred.parquet")
    labels.to_parquet(tmp_path / "labels.parquet")
    code, out, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet",
                         "--json", tmp_path / "s.json", "--csv", tmp_path / "s.csv")
    assert code == 0, err
    assert "matched 4 of 4 label videos" in err and "stem: 4" in err
    assert "ICC" in out and "AU04" in out and "Avg." in out
    report = json.loads((tmp_path / "s.json").read_text())
    expected = au_scores(labels[list(AUS)].to_numpy(), pred[list(AUS)].to_numpy(), (1, 2, 4))
    for metric in ("ICC", "MSE", "MAE", "PCC", "F1"):
        for col in expected.columns:
            assert report["scores"][metric][col] == pytest.approx(expected.loc[metric, col], abs=1e-6)
    table = pd.read_csv(tmp_path / "s.csv")
    assert list(table.columns) == ["group", "metric", "stat", *AUS, "Avg."]
    icc_row = table[(table.metric == "ICC") & (table.stat == "value")].iloc[0]
    assert icc_row["Avg."] == pytest.approx(expected.loc["ICC", "Avg."], abs=1e-9)


def test_the_printed_table_has_aus_as_rows_fits_80_columns_and_cuts_no_number(tmp_path):
    """Twelve AUs with confidence intervals, piped (80 columns): every value printed whole."""
    rng = np.random.default_rng(3)
    aus = [f"AU{a:02d}" for a in (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)]
    frames = pd.DataFrame({"video": np.repeat([f"v{k}" for k in range(4)], 50), "frame": np.tile(np.arange(50), 4)})
    labels = frames.assign(**{au: rng.integers(0, 6, len(frames)).astype(np.float32) for au in aus})
    pred = frames.assign(success=True, **{au: np.clip(labels[au] + rng.normal(0, 1, len(frames)), 0, 5) for au in aus})
    pred.loc[pred.frame < 5, aus] = np.nan  # no face there: n is less than the matched frames
    pred.to_parquet(tmp_path / "pred.parquet")
    labels.to_parquet(tmp_path / "labels.parquet")
    code, out, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet", "--ci", "0.9", "--boot", "50",
                         "--json", tmp_path / "s.json")
    assert code == 0, err
    lines = out.splitlines()
    assert max(map(len, lines)) <= 80 and "…" not in out
    assert "AU scores on 180 of 200 matched frames: those with a prediction and a label" in " ".join(out.split())
    assert "n: frames with a prediction and this AU's label" in out
    report = json.loads((tmp_path / "s.json").read_text())
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in aus + ["Avg."]}
    assert list(rows) == aus + ["Avg."]
    for au, cells in rows.items():
        assert cells == [f"{report['scores'][m][au]:.2f}" for m in ("ICC", "MSE", "MAE", "PCC", "F1")] + [f"{report['scores']['n'][au]:,.0f}"]
    assert rows["AU01"][-1] == "180"
    ci = [line.split()[2:] for line in lines if line.startswith("90% CI")]
    assert len(ci) == 13 and ci[0][0] == f"{report['ci']['low']['ICC']['AU01']:.2f}–{report['ci']['high']['ICC']['AU01']:.2f}"


def test_nines_are_left_out_and_length_mismatch_reported(tmp_path):
    pred, labels = make_tables(n_videos=2, extra_label_frames=5)
    labels.loc[labels.frame.isin([3, 4, 5]), "AU02"] = 9  # unlabelled
    labels.loc[labels.frame == 7, "AU04"] = 7  # out of range
    labels.to_csv(tmp_path / "labels.csv", index=False)
    pred.to_parquet(tmp_path / "pred.parquet")
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.csv", "--json", tmp_path / "s.json")
    assert code == 0, err
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["scores"]["n"] == {"AU01": 160, "AU02": 154, "AU04": 158, "Avg.": pytest.approx(472 / 3)}
    assert report["join"]["left_out"] == {"AU01": 0, "AU02": 6, "AU04": 2}
    mismatch = report["join"]["frame_mismatch"]
    assert [(m["video"], m["labels"], m["predictions"], m["matched"]) for m in mismatch] == [("vid0", 85, 80, 80), ("vid1", 85, 80, 80)]
    assert "frame counts differ in 2 videos" in err and "vid0 labels 85 / predictions 80" in err
    keep = (labels.frame < 80) & (labels.AU02 != 9)
    y = labels.loc[keep, "AU02"].to_numpy(float)
    p = pred.set_index(["video", "frame"]).loc[list(zip("/data/clips/" + labels.loc[keep, "video"] + ".mp4", labels.loc[keep, "frame"])), "AU02"]
    assert report["scores"]["ICC"]["AU02"] == pytest.approx(au_scores(y, p.to_numpy(float), (2,)).loc["ICC", "AU02"], abs=1e-6)


def test_openface_csv_predictions_score_like_the_parquet(tmp_path):
    pred, labels = make_tables(n_videos=1, label_name="interview", pred_name="interview")
    labels.to_parquet(tmp_path / "labels.parquet")
    pred.to_parquet(tmp_path / "pred.parquet")
    openface = pd.DataFrame({"frame": pred.frame + 1, " face_id": 0, " timestamp": pred.timestamp,
                             " confidence": 0.98, " success": 1})
    for au in AUS:
        openface[f" {au}_r"] = pred[au]
        openface[f" {au}_c"] = (pred[au] >= 1).astype(int)
    openface.to_csv(tmp_path / "interview.csv", index=False)
    code_pq, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet", "--json", tmp_path / "a.json")
    code_of, _, err_of = run("score", tmp_path / "interview.csv", "--labels", tmp_path / "labels.parquet", "--json", tmp_path / "b.json")
    assert code_pq == 0 and code_of == 0, err + err_of
    a, b = (json.loads((tmp_path / f).read_text()) for f in ("a.json", "b.json"))
    assert b["scores"]["n"]["AU01"] == 80  # OpenFace frame 1 is frame 0: every frame matched
    for metric in ("ICC", "MSE", "PCC"):
        assert b["scores"][metric] == pytest.approx(a["scores"][metric], abs=1e-6)


def test_unmatched_ignored_and_other_faces_are_reported():
    pred, labels = make_tables(n_videos=3)
    pred["AU12"] = np.float32(1.0)
    labels = labels[labels.video != "vid2"].assign(video=lambda d: d.video.replace("vid1", "other"), AU06=np.float32(2))
    second_face = pred[pred.video.str.endswith("vid0.mp4")].assign(face=np.int16(1))
    report = score_frames(pd.concat([pred, second_face]), labels, ScoreConfig(Path("p"), Path("l"))).join
    assert report.matched == {"vid0": "/data/clips/vid0.mp4"}
    assert report.unmatched_labels == ["other"]
    assert sorted(report.unmatched_predictions) == ["/data/clips/vid1.mp4", "/data/clips/vid2.mp4"]
    assert report.ignored_aus == {"only in the labels": ["AU06"], "only in the predictions": ["AU12"]}
    assert report.other_faces == 80
    text = "\n".join(report.summary())
    assert "label videos without predictions (1): other" in text and "AU06" in text and "AU12" in text


def test_video_matching_rules():
    preds = ["/d/Videos_LeftCamera/LeftVideoSN001_comp.avi", "/d/Videos_LeftCamera/LeftVideoSN002_comp.avi",
             "/d/Video_RightCamera/RightVideoSN002_Comp.avi", "/bp4d/F001/T1", "/bp4d/F002/T1", "clip.MP4"]
    labels = ["SN001", "SN002", "Videos_LeftCamera/LeftVideoSN002_comp.avi", "F002/T1", "CLIP", "T1"]
    report = match_videos(labels, preds)
    assert report.matched == {
        "SN001": preds[0],  # the only prediction stem containing it
        "Videos_LeftCamera/LeftVideoSN002_comp.avi": preds[1],  # path tail
        "F002/T1": preds[4],  # path tail, though the stems T1 collide
        "CLIP": "clip.MP4",  # stem in any case
        "SN002": preds[2],  # the left camera went to a stronger rule: the right one is the only candidate left
    }
    assert report.how["SN001"] == "stem contained" and report.how["F002/T1"] == "path tail"
    assert report.ambiguous == {"T1": ["/bp4d/F001/T1", "/bp4d/F002/T1"]}
    assert report.unmatched_labels == [] and report.unmatched_predictions == ["/bp4d/F001/T1"]
    both_cameras = match_videos(["SN003"], ["LeftVideoSN003_comp.avi", "RightVideoSN003_Comp.avi"])
    assert both_cameras.matched == {} and both_cameras.ambiguous == {"SN003": ["LeftVideoSN003_comp.avi", "RightVideoSN003_Comp.avi"]}


def test_subject_of_known_layouts():
    assert subject_of("Videos_LeftCamera/LeftVideoSN004_comp.avi") == "SN004"
    assert subject_of("F012/T3") == "F012"
    assert subject_of("FERA17_TR_M007_T2_5.mp4") == "M007"
    assert subject_of("/home/me/interview_03.mp4") == "interview_03"


def test_bootstrap_ci_contains_estimate_and_narrows_with_more_videos(tmp_path):
    widths = []
    for n_videos in (5, 40):
        pred, labels = make_tables(n_videos=n_videos, frames=40, seed=n_videos)
        pred.to_parquet(tmp_path / "pred.parquet")
        labels.to_parquet(tmp_path / "labels.parquet")
        code, out, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet",
                             "--ci", "0.9", "--boot", "300", "--json", tmp_path / "s.json")
        assert code == 0, err
        assert "90% CI" in out
        r = json.loads((tmp_path / "s.json").read_text())
        assert r["ci"]["level"] == 0.9 and r["ci"]["resampled"] == "videos"
        for metric in ("ICC", "MSE", "MAE"):
            for col, value in r["scores"][metric].items():
                assert r["ci"]["low"][metric][col] - 1e-9 <= value <= r["ci"]["high"][metric][col] + 1e-9
        widths.append(r["ci"]["high"]["ICC"]["Avg."] - r["ci"]["low"]["ICC"]["Avg."])
    assert widths[1] < 0.7 * widths[0]


def test_score_by_video_and_subject(tmp_path):
    pred, labels = make_tables(n_videos=4, label_name="SN00{v}", pred_name="LeftVideoSN00{v}_comp.avi")
    labels.to_parquet(tmp_path / "labels.parquet")
    pred.to_parquet(tmp_path / "pred.parquet")
    code, out, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet",
                         "--by", "subject", "--json", tmp_path / "s.json")
    assert code == 0, err
    r = json.loads((tmp_path / "s.json").read_text())
    assert sorted(r["groups"]) == ["SN000", "SN001", "SN002", "SN003"]
    one = labels.video == "SN002"
    expected = au_scores(labels.loc[one, list(AUS)].to_numpy(), pred.loc[one.to_numpy(), list(AUS)].to_numpy(), (1, 2, 4))
    assert r["groups"]["SN002"]["ICC"]["Avg."] == pytest.approx(expected.loc["ICC", "Avg."], abs=1e-6)
    assert "Per subject" in out
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet", "--by", "site")
    assert code == 2 and "--by must be video or subject" in err


def test_score_labels_from_a_disfa_root(tmp_path):
    root = tmp_path / "DISFA"
    (root / "Videos_LeftCamera").mkdir(parents=True)
    (root / "Videos_LeftCamera" / "LeftVideoSN001_comp.avi").touch()
    (root / "ActionUnit_Labels" / "SN001").mkdir(parents=True)
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 6, (30, 2))
    for j, au in enumerate((1, 2)):
        lines = [f"{t + 1},{9 if t == 4 else truth[t, j]}" for t in range(30)]
        (root / "ActionUnit_Labels" / "SN001" / f"SN001_au{au}.txt").write_text("\n".join(lines) + "\n")
    pred = pd.DataFrame({"video": "/elsewhere/LeftVideoSN001_comp.avi", "frame": np.arange(30, dtype=np.int32),
                         "AU01": truth[:, 0].astype(np.float32), "AU02": truth[:, 1].astype(np.float32)})
    pred.to_parquet(tmp_path / "pred.parquet")
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", root, "--kind", "disfa", "--json", tmp_path / "s.json")
    assert code == 0, err
    r = json.loads((tmp_path / "s.json").read_text())
    assert r["aus"] == ["AU01", "AU02"] and r["scores"]["ICC"]["AU01"] == pytest.approx(1.0)
    assert r["scores"]["n"]["AU01"] == 29  # the 9 on frame 4 left out
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", root)
    assert code == 2 and "--kind" in err


def test_score_usage_errors_exit_2(tmp_path):
    pred, labels = make_tables(n_videos=1)
    pred.to_parquet(tmp_path / "pred.parquet")
    labels.to_parquet(tmp_path / "labels.parquet")
    code, _, err = run("score", tmp_path / "missing.parquet", "--labels", tmp_path / "labels.parquet")
    assert code == 2 and "missing.parquet: no such file" in err
    (tmp_path / "broken.parquet").write_bytes(b"not parquet at all")
    code, _, err = run("score", tmp_path / "broken.parquet", "--labels", tmp_path / "labels.parquet")
    assert code == 2 and "broken.parquet: cannot read predictions" in err
    labels.rename(columns={"AU01": "AU05", "AU02": "AU06", "AU04": "AU07"}).to_parquet(tmp_path / "other.parquet")
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "other.parquet")
    assert code == 2 and "share no AU" in err
    labels.assign(video="someone_else").to_parquet(tmp_path / "nomatch.parquet")
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "nomatch.parquet")
    assert code == 2 and "no (video, frame)" in err


def test_a_broken_file_in_a_predictions_directory_loses_only_itself(tmp_path):
    pred, labels = make_tables(n_videos=3)
    labels.to_parquet(tmp_path / "labels.parquet")
    folder = tmp_path / "per_video"
    folder.mkdir()
    for v, part in pred.groupby("video"):
        part.to_parquet(folder / f"{Path(v).stem}.parquet")
    (folder / "vid1.parquet").write_bytes(b"truncated")
    code, out, err = run("score", folder, "--labels", tmp_path / "labels.parquet", "--json", tmp_path / "s.json")
    assert code == 1
    assert "vid1.parquet: cannot read predictions" in err
    r = json.loads((tmp_path / "s.json").read_text())
    assert r["scores"]["n"]["AU01"] == 160 and r["join"]["unmatched_labels"] == ["vid1"]
    assert len(r["failures"]) == 1 and "ICC" in out


# ── plot ────────────────────────────────────────────────────────────────────────────────────
def test_plot_draws_timeline_with_labels_and_gaps(tmp_path):
    import matplotlib.image

    pred, labels = make_tables(n_videos=2, frames=60)
    pred.loc[pred.frame.between(20, 29), "success"] = False
    pred.to_parquet(tmp_path / "pred.parquet")
    labels.to_parquet(tmp_path / "labels.parquet")
    out = tmp_path / "t.png"
    code, _, err = run("plot", tmp_path / "pred.parquet", "--video", "vid1", "--labels", tmp_path / "labels.parquet", "--out", out)
    assert code == 0, err
    image = matplotlib.image.imread(out)[..., :3]
    assert image.shape[0] > 300 and image.shape[1] > 1000  # one row per AU, 11 in wide
    blue, orange, grey = (np.abs(image - colour).max(-1) < tol for colour, tol in
                          (((0.122, 0.467, 0.706), 0.06), ((1.0, 0.498, 0.055), 0.06), ((0.85, 0.85, 0.85), 0.01)))
    rows = np.flatnonzero(blue.any(axis=1))
    panels = [(r[0], r[-1] + 1) for r in np.split(rows, np.flatnonzero(np.diff(rows) > 5) + 1) if r[-1] - r[0] > 40]
    assert len(panels) == len(AUS)  # a row of prediction line per AU (the legend's sample is too short to count)
    drawn = pred[pred.video == "/data/clips/vid1.mp4"]
    for (top, bottom), au in zip(panels, AUS):
        line = blue[top:bottom]
        cols = np.flatnonzero(line.any(axis=0))
        first, last = cols[0], cols[-1]  # frame 0 and frame 59
        # the line's height follows vid1's predictions of this AU (image rows grow downwards)
        height = [-np.flatnonzero(line[:, c]).mean() for c in cols]
        value = np.interp((cols - first) / (last - first) * 59, drawn.frame, drawn[au])
        assert np.corrcoef(height, value)[0, 1] > 0.98
        assert orange[top:bottom].sum() > 30  # the labels drawn in the same row
        # the frames without a face (20–29) shaded over the whole row, from half a frame before to half after
        shaded = np.flatnonzero(grey[top:bottom].mean(axis=0) > 0.5)
        assert abs((shaded[0] - first) / (last - first) - 19.5 / 59) < 0.004 and abs((shaded[-1] - first) / (last - first) - 29.5 / 59) < 0.004
    code, _, err = run("plot", tmp_path / "pred.parquet", "--video", "nobody", "--out", out)
    assert code == 2 and "nobody" in err
    (tmp_path / "file").write_text("a file where a folder should be")
    code, _, err = run("plot", tmp_path / "pred.parquet", "--out", tmp_path / "file" / "t.png")
    assert code == 2 and err.strip() == f"usage error --out {tmp_path / 'file' / 't.png'}: {tmp_path / 'file'} is a file, not a folder"


def test_plot_shades_lost_frames(tmp_path):
    """Shading is the only light-grey (0.85) fill: it appears exactly when some frames failed."""
    from auhm.viz.timeline import plot_timeline

    pred, _ = make_tables(n_videos=1, frames=60)
    grey = []
    for lost in (False, True):
        pred["success"] = True
        if lost:
            pred.loc[pred.frame.between(10, 40), "success"] = False
            pred.loc[~pred.success, list(AUS)] = np.nan
        path = plot_timeline(pred, tmp_path / f"t{lost}.png")
        import matplotlib.image

        rgb = matplotlib.image.imread(path)[..., :3]
        grey.append(np.mean(np.all(np.abs(rgb - 0.85) < 0.01, axis=-1)))
    assert grey[0] < 0.01 < grey[1]


def test_evaluate_and_train_print_scores_in_the_score_table():
    """One table function for `auhm score`, `evaluate` and `train`: what they all have is a scores frame and a frame count."""
    from rich.console import Console

    from auhm.metrics import au_table

    rng = np.random.default_rng(0)
    y = rng.uniform(0, 5, (40, 2))
    scores = au_scores(y, np.clip(y + rng.normal(0, 0.5, y.shape), 0, 5), (1, 12))
    console = Console(record=True, width=80)
    console.print(au_table(scores, 40, title="best.pt on part1"))
    lines = console.export_text().splitlines()
    assert " ".join(line.strip() for line in lines).startswith("best.pt on part1: AU scores on 40 frames, each with a prediction and a label")
    rows = {line.split()[0]: line.split()[1:] for line in lines if line.split() and line.split()[0] in ("AU01", "AU12", "Avg.")}
    assert list(rows) == ["AU01", "AU12", "Avg."]
    assert rows["AU12"] == [f"{scores.loc[m, 'AU12']:.2f}" for m in ("ICC", "MSE", "MAE", "PCC", "F1")] + ["40"]


# ── several faces a frame ───────────────────────────────────────────────────────────────────
def two_tracks(frames=80, second=range(0, 40), seed=0):
    """vid0's predictions as track 5 on every frame, plus track 2 (noise) on the frames ``second``."""
    pred, labels = make_tables(n_videos=1, frames=frames, seed=seed)
    pred["face"] = np.int16(5)
    rng = np.random.default_rng(seed + 1)
    other = pred[pred.frame.isin(second)].assign(face=np.int16(2))
    other[list(AUS)] = rng.uniform(0, 5, (len(other), len(AUS))).astype(np.float32)
    return pred, other, labels


def test_several_faces_join_the_track_on_most_frames_or_the_one_asked_for():
    pred, other, labels = two_tracks()
    both = pd.concat([other, pred], ignore_index=True)
    report = score_frames(both, labels, ScoreConfig(Path("p"), Path("l")))
    assert report.join.faces == {"/data/clips/vid0.mp4": {"face": 5, "how": "most frames", "frames": 80, "tracks": 2}}
    assert report.join.other_faces == 40 and report.join.rows_matched == 80
    alone = score_frames(pred, labels, ScoreConfig(Path("p"), Path("l")))
    pd.testing.assert_frame_equal(report.scores, alone.scores)
    assert "vid0.mp4 face 5 (most frames, 80 frames, 2 tracks)" in "\n".join(report.join.summary())
    # --face 2: that track where it is, no face (null) on the other 40 frames
    asked = score_frames(both, labels, ScoreConfig(Path("p"), Path("l"), face=2))
    assert asked.join.faces["/data/clips/vid0.mp4"] == {"face": 2, "how": "asked (--face)", "frames": 40, "tracks": 2}
    assert asked.scores.loc["n", "AU01"] == 40 and asked.join.rows_matched == 80 and asked.join.other_faces == 80
    direct = au_scores(labels[list(AUS)].to_numpy()[:40], other[list(AUS)].to_numpy(), (1, 2, 4))
    np.testing.assert_allclose(asked.scores.loc["ICC"], direct.loc["ICC"], atol=1e-9)


def test_one_face_a_frame_is_joined_whatever_its_ids():
    pred, labels = make_tables(n_videos=1)
    pred["face"] = np.where(pred.frame < 30, 0, 1).astype(np.int16)  # the tracker lost the face and found it again
    report = score_frames(pred, labels, ScoreConfig(Path("p"), Path("l")))
    assert report.join.faces == {} and report.join.other_faces == 0 and report.scores.loc["n", "AU01"] == 80


def test_labels_with_a_face_column_join_on_it(tmp_path):
    pred, other, labels = two_tracks()
    truth_other = other[["video", "frame", *AUS]].assign(video="vid0", face=np.int16(2))
    truth_other[list(AUS)] = np.clip(np.round(other[list(AUS)].to_numpy() + 0.3), 0, 5)
    face_labels = pd.concat([labels.assign(face=np.int16(5)), truth_other], ignore_index=True)
    both = pd.concat([other, pred], ignore_index=True)
    report = score_frames(both, face_labels, ScoreConfig(Path("p"), Path("l")))
    assert report.join.on_face and report.join.faces == {} and report.join.rows_matched == 120
    by_face = pd.concat([pred, other]).merge(face_labels.assign(video="/data/clips/vid0.mp4"), on=["video", "frame", "face"],
                                             suffixes=("_p", "_t"))
    direct = au_scores(by_face[[f"{a}_t" for a in AUS]].to_numpy(), by_face[[f"{a}_p" for a in AUS]].to_numpy(), (1, 2, 4))
    np.testing.assert_allclose(report.scores.loc["ICC"], direct.loc["ICC"], atol=1e-9)
    # the CLI says which face it joined
    both.to_parquet(tmp_path / "pred.parquet")
    labels.to_parquet(tmp_path / "labels.parquet")
    code, _, err = run("score", tmp_path / "pred.parquet", "--labels", tmp_path / "labels.parquet", "--face", "2")
    assert code == 0 and "face 2 (asked (--face), 40 frames, 2 tracks)" in " ".join(err.split())


def test_plot_draws_the_track_on_most_frames_or_the_one_asked_for(tmp_path):
    import matplotlib.image

    pred, other, _ = two_tracks(frames=60, second=range(20, 40))
    pd.concat([pred, other], ignore_index=True).to_parquet(tmp_path / "pred.parquet")
    grey = {}
    for face in (None, 2, 5):
        out = tmp_path / f"t{face}.png"
        code, _, err = run("plot", tmp_path / "pred.parquet", "--out", out, *(["--face", face] if face is not None else []))
        assert code == 0, err
        rgb = matplotlib.image.imread(out)[..., :3]
        grey[face] = np.mean(np.all(np.abs(rgb - 0.85) < 0.01, axis=-1))
    assert grey[None] == grey[5] < 0.01 < grey[2]  # track 2 is absent on 40 of 60 frames: shaded there
