"""Aff-Wild2's AU track read as distributed: one annotation per video (two for two people), −1 unannotated."""

from __future__ import annotations

import numpy as np

from auhm.data import ShardDataset, list_shards, load_sessions
from helpers import prepare_cli, write_sequence, write_text

HEADER = "AU1,AU2,AU4,AU6,AU7,AU10,AU12,AU15,AU23,AU24,AU25,AU26"
TRAIN = "Annotations/AU_Detection_Challenge/Train_Set"
VALID = "Annotations/AU_Detection_Challenge/Validation_Set"


def row(k: int, j0: int = 0) -> list[int]:
    return [-1 if k == 2 else (k + j + j0) % 2 for j in range(12)]


def annotation(n: int, j0: int = 0) -> str:
    return HEADER + "\n" + "".join(",".join(map(str, row(k, j0))) + "\n" for k in range(n))


def affwild2_tree(root, crops: bool = False) -> None:
    write_text(root / "batch1" / "10-60-1280x720.mp4", "not decoded by the reader")
    write_text(root / "batch2" / "video5.avi", "two people")
    write_text(root / TRAIN / "10-60-1280x720.txt", annotation(4))
    write_text(root / TRAIN / "video5_left.txt", annotation(3, 1))
    write_text(root / VALID / "video5_right.txt", annotation(3))
    if crops:
        for name in ("10-60-1280x720", "video5_left"):
            n = 4 if name.startswith("10") else 3
            write_sequence(root / "cropped_aligned" / name, [f"{k + 1:05d}.jpg" for k in range(n)], root / "auhm_truth" / f"{name}.parquet")


def test_occurrence_rows_unannotated_null_sides_and_sets(tmp_path):
    affwild2_tree(tmp_path)
    corpus = load_sessions("aff-wild2", tmp_path)
    assert not corpus.failures
    by_key = {s.key: s for s in corpus}
    assert sorted(by_key) == ["batch1/10-60-1280x720.mp4", "batch2/video5_left.avi", "batch2/video5_right.avi"]
    single = by_key["batch1/10-60-1280x720.mp4"]
    assert single.split == "train" and single.frame_files is None and single.unpreparable is None
    assert single.labels["frame"].tolist() == [0, 1, 2, 3]  # line k after the header is frame k - 1
    assert single.labels["AU01"].tolist()[:2] == [0, 1] and np.isnan(single.labels["AU26"].iloc[2])
    assert single.labels["AU24"].tolist()[3] == row(3)[9]
    left, right = by_key["batch2/video5_left.avi"], by_key["batch2/video5_right.avi"]
    assert (left.task, right.task, left.split, right.split) == ("left", "right", "train", "dev")
    assert left.path == right.path == tmp_path / "batch2" / "video5.avi"
    assert left.labels["AU01"].tolist()[0] == 1 and right.labels["AU01"].tolist()[0] == 0
    assert "cropped_aligned/video5_left/" in left.unpreparable


def test_a_malformed_annotation_is_named_on_one_line_and_the_rest_read(tmp_path):
    affwild2_tree(tmp_path)
    bad = write_text(tmp_path / TRAIN / "video9.txt", HEADER + "\n0,1,0\n")
    write_text(tmp_path / "videos" / "video9.mp4", "x")
    write_text(tmp_path / TRAIN / "nowhere.txt", annotation(2))
    corpus = load_sessions("aff-wild2", tmp_path)
    assert len(corpus) == 3
    lines = sorted(str(f) for f in corpus.failures)
    assert lines[1] == f"{bad}: line 2 is not 12 values of 0, 1 or -1: '0,1,0'"
    assert "nowhere.txt" in lines[0] and "no video nowhere.*" in lines[0]


def test_prepare_from_the_readme_crops_and_the_two_person_video_without_them(tmp_path):
    root = tmp_path / "Aff-Wild2"
    affwild2_tree(root, crops=True)
    result = prepare_cli("aff-wild2", root, tmp_path / "work")
    assert result.exit_code == 1, result.output
    errors = [line for line in result.output.splitlines() if line.startswith("error")]
    assert len(errors) == 1 and "video5.avi" in errors[0] and "right one needs its crops" in errors[0]
    ds = ShardDataset(list_shards(tmp_path / "work"))
    assert sorted(set(ds.video)) == ["cropped_aligned/10-60-1280x720", "cropped_aligned/video5_left"]
    one = ds.video == "cropped_aligned/10-60-1280x720"
    assert ds.frame[one].tolist() == [0, 1, 3]  # 00001.jpg is frame 0; frame 2 is unannotated (-1)
    assert ds.labels[one][1].tolist() == [float(v) for v in row(1)]
    assert set(ds.split[one]) == {"train"}
