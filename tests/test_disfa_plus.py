"""DISFA+ read as distributed: per-trial label folders beside image folders, a malformed file named."""

from __future__ import annotations

import json

import numpy as np

from auhm.data import ShardDataset, list_shards, load_sessions
from auhm.data.disfa import PARTS
from auhm.data.disfa_plus import SUBJECTS
from helpers import prepare_cli, write_sequence, write_text

AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)
TRIALS = {"SN001": ("A1_AU1_TrailNo_1", "E1_TrailNo_1"), "SN003": ("A2_AU2_TrailNo_1",)}


def value(subject: str, trial: str, au: int, frame: int) -> int:
    return (frame + au + len(trial) + int(subject[2:])) % 6


def disfa_plus_tree(root, n: int = 4, truth: bool = False) -> None:
    """The release's layout: Labels/SN/<trial>/AU<n>.txt ("frame_id intensity", a header line) and Images/SN/<trial>/000.jpg."""
    for subject, trials in TRIALS.items():
        for trial in trials:
            names = [f"{k:03d}.jpg" for k in range(n)]
            sidecar = root / "auhm_truth" / f"{subject}_{trial}.parquet" if truth else None
            write_sequence(root / "Images" / subject / trial, names, sidecar)
            for au in AUS:
                rows = "".join(f"{k:03d}.jpg     {value(subject, trial, au, k)}\n" for k in range(n))
                write_text(root / "Labels" / subject / trial / f"AU{au}.txt", f"Frame_Number   AU{au}\n" + rows)


def test_labels_by_image_number_posed_and_spontaneous_trials_and_disfa_parts(tmp_path):
    disfa_plus_tree(tmp_path)
    corpus = load_sessions("disfa-plus", tmp_path)
    assert not corpus.failures and not corpus.warnings
    assert [s.key for s in corpus] == ["Images/SN001/A1_AU1_TrailNo_1", "Images/SN001/E1_TrailNo_1", "Images/SN003/A2_AU2_TrailNo_1"]
    s = corpus[1]
    assert s.subject == "SN001" and s.task == "E1_TrailNo_1" and [f for f, _ in s.frame_files] == [0, 1, 2, 3]
    for au in (1, 17, 26):
        assert s.labels[f"AU{au:02d}"].tolist() == [value("SN001", "E1_TrailNo_1", au, k) for k in range(4)]
    # DISFA's standard parts: SN001 in part1, SN003 in part3.
    assert {s.subject: s.split for s in corpus} == {"SN001": "part1", "SN003": "part3"}
    assert "SN001" in PARTS["part1"] and "SN003" in PARTS["part3"]
    assert set(SUBJECTS) <= {s for part in PARTS.values() for s in part}  # its 9 subjects are DISFA's


def test_a_malformed_label_file_is_named_on_one_line_and_the_rest_read(tmp_path):
    disfa_plus_tree(tmp_path)
    bad = tmp_path / "Labels/SN003/A2_AU2_TrailNo_1/AU12.txt"
    bad.write_text("Frame_Number AU12\n000.jpg 1\n001.jpg one\n")
    write_text(tmp_path / "Labels/SN009/A1_AU1_TrailNo_1/AU1.txt", "000.jpg 1\n")  # labels without images
    corpus = load_sessions("disfa-plus", tmp_path)
    assert len(corpus) == 3
    lines = [str(f) for f in corpus.failures]
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert any(str(bad) in line and "line 3" in line and "AU12 is null" in line for line in lines)
    assert any("SN009/A1_AU1_TrailNo_1" in line and "no Images" in line for line in lines)
    s = corpus[2]
    assert s.labels["AU12"].isna().all() and s.labels["AU02"].tolist() == [value("SN003", "A2_AU2_TrailNo_1", 2, k) for k in range(4)]


def test_prepare_from_the_readme(tmp_path):
    root = tmp_path / "DISFA+"
    disfa_plus_tree(root, truth=True)
    result = prepare_cli("disfa-plus", root, tmp_path / "work")
    assert result.exit_code == 0, result.output
    ds = ShardDataset(list_shards(tmp_path / "work"))
    assert len(ds) == 12 and sorted(set(ds.video)) == sorted(s.key for s in load_sessions("disfa-plus", root))
    k = int(np.flatnonzero((ds.video == "Images/SN003/A2_AU2_TrailNo_1") & (ds.frame == 2))[0])
    assert ds.labels[k].tolist() == [value("SN003", "A2_AU2_TrailNo_1", au, 2) for au in AUS]
    assert abs(ds.image(k).mean() - 60) < 8  # the third image's grey level: frame 2 is 002.jpg
    assert json.loads((tmp_path / "work/manifest.json").read_text())["kind"] == "disfa-plus"
