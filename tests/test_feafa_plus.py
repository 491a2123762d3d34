"""FEAFA+ read as released: a label file of 24 values in 0–1 beside each frame, scaled only on request."""

from __future__ import annotations

import numpy as np
import pytest

from auhm.data import ShardDataset, list_shards, load_sessions
from auhm.data.feafa_plus import AUS, CHANNELS
from helpers import prepare_cli, write_sequence, write_text


def values(frame: int) -> list[float]:
    return [round(((frame * 7 + j * 3) % 11) / 10, 2) for j in range(24)]


def feafa_tree(root, truth: bool = False) -> None:
    for seq, n in (("FEAFA-A/PV001", 3), ("DISFA/SN002", 2)):
        folder = root / seq
        names = [f"{k + 1:05d}.png" for k in range(n)]
        write_sequence(folder, names, root / "auhm_truth" / f"{folder.name}.parquet" if truth else None)
        for k in range(n):
            write_text(folder / f"{k + 1:05d}.auw", " ".join(f"{v:.2f}" for v in values(k + 1)) + "\n")


def expected(frame: int, au: int) -> float:
    """By hand from CHANNELS: the AU's value, or the larger of its left and right ones."""
    return max(v for name, v in zip(CHANNELS, values(frame)) if name.rstrip("LR") == f"AU{au}")


def test_values_side_pairs_and_scale(tmp_path):
    feafa_tree(tmp_path)
    corpus = load_sessions("feafa-plus", tmp_path)
    assert not corpus.failures and [s.key for s in corpus] == ["DISFA/SN002", "FEAFA-A/PV001"]
    s = corpus[1]
    assert [f for f, _ in s.frame_files] == [1, 2, 3] and len(AUS) == 17
    for au in AUS:
        np.testing.assert_allclose(s.labels[f"AU{au:02d}"], [expected(f, au) for f in (1, 2, 3)], atol=1e-6)
    scaled = load_sessions("feafa-plus", tmp_path, scale_to_five=True)[1]
    np.testing.assert_allclose(scaled.labels["AU02"], [5 * expected(f, 2) for f in (1, 2, 3)], atol=1e-5)


def test_a_malformed_label_file_is_named_on_one_line_and_the_rest_read(tmp_path):
    feafa_tree(tmp_path)
    bad = write_text(tmp_path / "FEAFA-A/PV001/00002.auw", "0.1 0.2\n")
    corpus = load_sessions("feafa-plus", tmp_path)
    assert [str(f) for f in corpus.failures] == [f"{bad}: 2 values, not 24; frame 2 is unlabelled"]
    assert corpus[1].labels["frame"].tolist() == [1, 3]
    write_text(tmp_path / "FEAFA-A/PV001/00002.auw", " ".join(["1.5"] * 24))
    assert "AU1 = 1.5 is outside 0–1" in str(load_sessions("feafa-plus", tmp_path).failures[0])


def test_prepare_from_the_readme_with_and_without_scaling(tmp_path):
    root = tmp_path / "FEAFA+"
    feafa_tree(root, truth=True)
    assert prepare_cli("feafa-plus", root, tmp_path / "plain").exit_code == 0
    result = prepare_cli("feafa-plus", root, tmp_path / "scaled", "--scale-to-5")
    assert result.exit_code == 0, result.output
    plain, scaled = (ShardDataset(list_shards(tmp_path / d)) for d in ("plain", "scaled"))
    assert len(plain) == 5
    np.testing.assert_allclose(scaled.labels, 5 * plain.labels, atol=1e-5)
    assert plain.labels[:, list(AUS).index(4)].tolist() == pytest.approx([expected(f, 4) for f in (1, 2)] + [expected(f, 4) for f in (1, 2, 3)])
    wrong = prepare_cli("disfa", root, tmp_path / "x", "--scale-to-5")
    assert wrong.exit_code == 2 and "--scale-to-5 is for kind feafa-plus" in wrong.output
