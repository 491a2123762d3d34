"""UNBC-McMaster read as distributed: per-frame FACS files (an empty one a neutral frame), PSPI, AAM points."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auhm.data import ShardDataset, list_shards, load_labels, load_sessions
from auhm.data.unbc import aam_landmarks
from helpers import prepare_cli, write_sequence, write_text

SUBJ, SEQ = "042-ll042", "ll042t1aaaff"
# frame -> FACS rows (AU, intensity) as the archive writes them; frame 2 is neutral (an empty file).
CODED = {1: [(4, 2), (6, 1), (43, 1)], 2: [], 3: [(12, 3), (25, 1), (50, 0)], 4: [(9, 4), (10, 2)]}
PSPI = {1: 4.0, 2: 0.0, 3: 0.0, 4: 6.0}


def sci(v: float) -> str:
    return f"   {v:.7e}"


def unbc_tree(root, truth: bool = False) -> None:
    names = [f"{SEQ}{k:03d}.png" for k in CODED]
    write_sequence(root / "Images" / SUBJ / SEQ, names, root / "auhm_truth" / f"{SEQ}.parquet" if truth else None)
    for k, rows in CODED.items():
        text = "".join(f"{sci(au)}{sci(v)}\n" for au, v in rows)
        write_text(root / "Frame_Labels" / "FACS" / SUBJ / SEQ / f"{SEQ}{k:03d}_facs.txt", text)
        write_text(root / "Frame_Labels" / "PSPI" / SUBJ / SEQ / f"{SEQ}{k:03d}_facs.txt", f"{sci(PSPI[k])}\n")


def test_facs_rows_neutral_frames_pspi_and_subject(tmp_path):
    unbc_tree(tmp_path)
    corpus = load_sessions("unbc", tmp_path)
    assert not corpus.failures and len(corpus) == 1
    s = corpus[0]
    assert s.key == f"Images/{SUBJ}/{SEQ}" and s.subject == SUBJ and [f for f, _ in s.frame_files] == [1, 2, 3, 4]
    labels = s.labels.set_index("frame")
    # Hand-read from CODED: absent AUs are 0, the neutral frame is all 0, AU 50 (not coded here) ignored.
    assert labels.loc[1, ["AU04", "AU06", "AU07", "AU43"]].tolist() == [2, 1, 0, 1]
    assert (labels.loc[2].drop("PSPI") == 0).all()
    assert labels.loc[3, ["AU12", "AU25", "AU26"]].tolist() == [3, 1, 0]
    assert labels["PSPI"].tolist() == [4, 0, 0, 6]
    table = load_labels("unbc", tmp_path)
    assert list(table.columns)[-1] == "PSPI" and table["PSPI"].max() == 6


def test_a_malformed_facs_file_is_named_on_one_line_and_the_rest_read(tmp_path):
    unbc_tree(tmp_path)
    bad = tmp_path / "Frame_Labels" / "FACS" / SUBJ / SEQ / f"{SEQ}003_facs.txt"
    bad.write_text("   1.2000000e+01   x\n")
    corpus = load_sessions("unbc", tmp_path)
    assert [str(f) for f in corpus.failures] == [f"{bad}: line 1 is not 'AU intensity': '1.2000000e+01   x'; frame 3 is unlabelled"]
    assert corpus[0].labels["frame"].tolist() == [1, 2, 4]


def test_aam_points_become_ibug_68(tmp_path):
    pts = np.column_stack([np.arange(66) * 2.0, np.arange(66) + 100.0])
    path = write_text(tmp_path / "a_aam.txt", "".join(f"{x:.6f} {y:.6f}\n" for x, y in pts))
    out = aam_landmarks(path)
    assert out.shape == (68, 2)
    np.testing.assert_array_equal(out[:60], pts[:60])  # the first 60 are the same points
    np.testing.assert_array_equal(out[61:64], pts[60:63])
    np.testing.assert_array_equal(out[65:], pts[63:])
    np.testing.assert_allclose(out[60], (pts[48] + pts[60]) / 2)  # inner corner: between outer corner and inner lip
    np.testing.assert_allclose(out[64], (pts[54] + pts[62]) / 2)


def test_prepare_from_the_readme(tmp_path):
    root = tmp_path / "UNBC"
    unbc_tree(root, truth=True)
    result = prepare_cli("unbc", root, tmp_path / "work")
    assert result.exit_code == 0, result.output
    ds = ShardDataset(list_shards(tmp_path / "work"))
    assert ds.frame.tolist() == [1, 2, 3, 4] and ds.labels[0, 0] == 2  # AU04 of frame 1
    labels = pd.read_parquet(tmp_path / "work" / "labels.parquet")
    assert labels["PSPI"].tolist() == [4, 0, 0, 6]
    from auhm.train.prepared import load_prepared  # training keeps the AUs a heatmap can be placed for

    trained = load_prepared(tmp_path / "work", trainable=True).shards.aus
    assert 43 not in trained and 7 not in trained and 4 in trained and len(trained) < len(ds.aus)


def test_score_reports_pspi_beside_the_aus_derived_from_predicted_aus(tmp_path):
    import json

    from typer.testing import CliRunner

    from auhm.cli import app

    unbc_tree(tmp_path / "UNBC")
    # frame: AU04, AU06, AU07, AU09, AU10 → PSPI by hand 2 + 1 + 1 = 4, 1, 0, 3 + 2 + 1 = 6 (labels: 4, 0, 0, 6).
    aus = {1: (2, 1, 0.5, 0, 1), 2: (1, 0, 0, 0, 0), 3: (0, 0, 0, 0, 0), 4: (3, 1, 2, 1, 0)}
    pred = pd.DataFrame([{"video": f"{SEQ}", "frame": f, "success": True,
                          **dict(zip(["AU04", "AU06", "AU07", "AU09", "AU10"], map(float, v)))} for f, v in aus.items()])
    pred.to_parquet(tmp_path / "p.parquet")
    result = CliRunner().invoke(app, ["score", str(tmp_path / "p.parquet"), "--labels", str(tmp_path / "UNBC"), "--kind", "unbc",
                                      "--json", str(tmp_path / "s.json")])
    assert result.exit_code == 0, result.output
    scores = json.loads((tmp_path / "s.json").read_text())["scores"]
    assert scores["MSE"]["PSPI"] == 0.25 and scores["MAE"]["PSPI"] == 0.25 and scores["n"]["PSPI"] == 4
    assert "no AU43 predicted: counted 0" in result.stderr and "PSPI" in result.stdout
    assert scores["MSE"]["Avg."] == np.mean([scores["MSE"][a] for a in ("AU04", "AU06", "AU07", "AU09", "AU10")])  # PSPI not in the average
