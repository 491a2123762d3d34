"""Corpus readers on hand-written files in each dataset's on-disk format (no video decoding here)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from auhm.data import load_labels, load_sessions
from auhm.data.disfa import PARTS as DISFA_PARTS
from auhm.data.readers import read_frame_values
from auhm.errors import UsageError

DISFA_AUS = (1, 2, 4, 5, 6, 9, 12, 15, 17, 20, 25, 26)


def write(path, text: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


def disfa_values(subject: int, au: int, n: int) -> list[int]:
    """Label values with 9s (unlabelled) sprinkled in."""
    return [9 if (t + au) % 7 == 0 else (t + au + subject) % 6 for t in range(n)]


def write_disfa(root, subjects=(1, 2, 3), n=10, skip_aus=(), video_dir="Videos_LeftCamera", video_name="LeftVideo{s}_comp.avi"):
    for i in subjects:
        s = f"SN{i:03d}"
        write(root / video_dir / video_name.format(s=s), b"not decoded by the reader")
        for au in DISFA_AUS:
            if (i, au) in skip_aus:
                continue
            lines = [f"{t + 1},{v}" for t, v in enumerate(disfa_values(i, au, n))]
            write(root / "ActionUnit_Labels" / s / f"{s}_au{au}.txt", "\n".join(lines) + "\n")


def test_read_frame_values_header_and_separators(tmp_path):
    write(tmp_path / "a.csv", "Frame,Intensity\n1,0\n2,3\n3,9\n")
    write(tmp_path / "b.txt", "1 0\r\n2\t5\r\n")
    write(tmp_path / "c.csv", "1,2\nfoo,bar\n")
    frames, values = read_frame_values(tmp_path / "a.csv")
    assert frames.tolist() == [1, 2, 3] and values.tolist() == [0, 3, 9]
    assert read_frame_values(tmp_path / "b.txt")[1].tolist() == [0, 5]
    with pytest.raises(ValueError, match="line 2"):
        read_frame_values(tmp_path / "c.csv")


def test_disfa_labels_are_the_files_shifted_to_zero_based(tmp_path):
    write_disfa(tmp_path, subjects=(1, 2), n=10)
    corpus = load_sessions("disfa", tmp_path)
    assert [s.key for s in corpus] == ["Videos_LeftCamera/LeftVideoSN001_comp.avi", "Videos_LeftCamera/LeftVideoSN002_comp.avi"]
    assert not corpus.failures and not corpus.warnings
    s = corpus[0]
    assert s.subject == "SN001" and s.labels["frame"].tolist() == list(range(10))
    for au in DISFA_AUS:
        col = s.labels[f"AU{au:02d}"].to_numpy()
        assert col.dtype == np.float32
        expected = [np.nan if v == 9 else v for v in disfa_values(1, au, 10)]
        np.testing.assert_array_equal(col, np.asarray(expected, np.float32))
    # The first label line "1,v" is frame 0.
    first = (tmp_path / "ActionUnit_Labels/SN001/SN001_au1.txt").read_text().splitlines()[0]
    assert first == f"1,{disfa_values(1, 1, 1)[0]}" and s.labels["AU01"].iloc[0] == disfa_values(1, 1, 1)[0]


def test_disfa_missing_au_file_is_null_and_reported(tmp_path):
    write_disfa(tmp_path, subjects=(1, 2), skip_aus={(2, 9)})
    corpus = load_sessions("disfa", tmp_path)
    s2 = corpus[1]
    assert s2.labels["AU09"].isna().all() and s2.labels["AU12"].notna().any()
    assert corpus[0].labels["AU09"].notna().any()
    assert len(corpus.warnings) == 1
    w = str(corpus.warnings[0])
    assert "SN002_au9.txt" in w and "missing" in w and "\n" not in w


def test_disfa_video_without_labels_fails_labels_without_video_warn(tmp_path):
    write_disfa(tmp_path, subjects=(1, 2))
    write(tmp_path / "Videos_LeftCamera/LeftVideoSN005_comp.avi", b"x")
    write(tmp_path / "ActionUnit_Labels/SN007/SN007_au1.txt", "1,0\n")
    corpus = load_sessions("disfa", tmp_path)
    assert [s.subject for s in corpus] == ["SN001", "SN002"]
    assert len(corpus.failures) == 1 and "LeftVideoSN005_comp.avi" in corpus.failures[0].path
    assert "no label files for SN005" in corpus.failures[0].reason
    assert any("SN007" in str(w) and "no video" in str(w) for w in corpus.warnings)


def test_disfa_case_variants_and_right_camera(tmp_path):
    write_disfa(tmp_path, subjects=(1,), video_dir="videos_leftcamera", video_name="leftvideo{s}_COMP.avi")
    write(tmp_path / "Video_RightCamera/RightVideoSN001_Comp.avi", b"x")
    write(tmp_path / "Videos_RightCamera/RightVideoSN002_comp.avi", b"x")  # no labels for SN002
    left_only = load_sessions("disfa", tmp_path)
    assert [s.key for s in left_only] == ["videos_leftcamera/leftvideoSN001_COMP.avi"]
    both = load_sessions("disfa", tmp_path, right_camera=True)
    assert sorted(s.key for s in both) == ["Video_RightCamera/RightVideoSN001_Comp.avi", "videos_leftcamera/leftvideoSN001_COMP.avi"]
    assert {s.task for s in both} == {"left", "right"}
    pd.testing.assert_frame_equal(both[0].labels, both[1].labels)
    assert both[0].split == both[1].split == "part1"  # by subject: both cameras together
    assert len(both.failures) == 1 and "SN002" in both.failures[0].reason


def test_disfa_standard_parts_and_unknown_subjects_round_robin(tmp_path):
    write_disfa(tmp_path, subjects=(1, 3, 13, 98, 99), n=3)
    corpus = load_sessions("disfa", tmp_path)
    split = {s.subject: s.split for s in corpus}
    assert split["SN001"] == "part1" and split["SN013"] == "part2" and split["SN003"] == "part3"
    assert split["SN098"] == "part1" and split["SN099"] == "part2"  # sorted, dealt in turn
    assert corpus.folds == ["part1", "part2", "part3"]
    assert corpus.splits == {"part1": ["SN001", "SN098"], "part2": ["SN013", "SN099"], "part3": ["SN003"]}
    # The three standard parts are disjoint and cover DISFA's 27 subjects.
    members = [s for part in DISFA_PARTS.values() for s in part]
    assert len(members) == len(set(members)) == 27


def test_load_labels_table(tmp_path):
    write_disfa(tmp_path, subjects=(1, 2), n=6)
    table = load_labels("disfa", tmp_path)
    assert list(table.columns) == ["video", "frame"] + [f"AU{a:02d}" for a in DISFA_AUS]
    assert len(table) == 12 and table["frame"].dtype == np.int32
    row = table[(table.video == "Videos_LeftCamera/LeftVideoSN002_comp.avi") & (table.frame == 4)].iloc[0]
    v = disfa_values(2, 12, 6)[4]
    assert row["AU12"] == v or (v == 9 and np.isnan(row["AU12"]))


def bp4d_tree(root):
    for subject, task, first, n in [("F001", "T1", 998, 4), ("F002", "T1", 10, 3), ("M017", "T8", 0, 2), ("M018", "T2", 5, 2)]:
        for k in range(n):
            write(root / "Sequences" / subject / task / f"{first + k}.jpg", b"jpeg")
        for au in (6, 10, 12, 14, 17):
            rows = [f"{first + k},{9 if k == 1 and au == 6 else (k + au) % 6}" for k in range(n)]
            name = f"{subject}_{task}_AU{au:02d}.csv" if au % 2 == 0 else f"{subject}_{task}.csv"
            write(root / "AU Intensity Codes3.0" / f"AU{au:02d}" / name, "\n".join(rows) + "\n")
        write(root / "AUCoding" / f"{subject}_{task}.csv", "Frame,1,2,4\n" + f"{first},0,1,9\n")


def test_bp4d_sequences_labels_and_split(tmp_path):
    bp4d_tree(tmp_path)
    corpus = load_sessions("bp4d", tmp_path)
    by_key = {s.key: s for s in corpus}
    assert sorted(by_key) == ["Sequences/F001/T1", "Sequences/F002/T1", "Sequences/M017/T8", "Sequences/M018/T2"]
    s = by_key["Sequences/F001/T1"]
    assert [f for f, _ in s.frame_files] == [998, 999, 1000, 1001]  # numeric, not lexicographic
    assert [p.name for _, p in s.frame_files] == ["998.jpg", "999.jpg", "1000.jpg", "1001.jpg"]
    assert s.labels["frame"].tolist() == [998, 999, 1000, 1001]
    assert np.isnan(s.labels["AU06"].iloc[1]) and s.labels["AU06"].iloc[0] == 0
    assert s.labels["AU17"].tolist() == [(k + 17) % 6 for k in range(4)]
    assert {k: v.split for k, v in by_key.items()} == {
        "Sequences/F001/T1": "train",
        "Sequences/F002/T1": "dev",
        "Sequences/M017/T8": "train",
        "Sequences/M018/T2": "dev",
    }
    assert corpus.folds is None and corpus.splits == {"dev": ["F002", "M018"], "train": ["F001", "M017"]}
    assert not corpus.failures and not corpus.warnings


def test_bp4d_missing_au_file_reported(tmp_path):
    bp4d_tree(tmp_path)
    (tmp_path / "AU Intensity Codes3.0/AU14/F002_T1_AU14.csv").unlink()
    corpus = load_sessions("bp4d", tmp_path)
    s = next(s for s in corpus if s.subject == "F002")
    assert s.labels["AU14"].isna().all()
    assert len(corpus.warnings) == 1 and "AU14" in corpus.warnings[0].path and "F002_T1" in corpus.warnings[0].path


def test_fera2017_header_rows_views_and_split(tmp_path):
    for prefix, subject in [("TR", "F001"), ("VA", "M002")]:
        for view in (1, 6):
            write(tmp_path / "videos" / f"FERA17_{prefix}_{subject}_T1_{view}.mp4", b"x")
        for au in (1, 4, 6, 10, 12, 14, 17):
            header = "Frame,Intensity\n" if au in (1, 12) else ""
            write(tmp_path / "labels" / f"FERA17_{prefix}_{subject}_T1_AU{au:02d}_Int.csv", header + "1,3\n2,9\n3,1\n")
    corpus = load_sessions("fera2017", tmp_path)
    assert len(corpus) == 4 and not corpus.failures and not corpus.warnings
    split = {s.key: s.split for s in corpus}
    assert split["videos/FERA17_TR_F001_T1_6.mp4"] == "train" and split["videos/FERA17_VA_M002_T1_1.mp4"] == "dev"
    s = corpus[0]
    assert s.labels["frame"].tolist() == [0, 1, 2]
    for au in (1, 4, 12, 17):
        np.testing.assert_array_equal(s.labels[f"AU{au:02d}"].to_numpy(), np.array([3, np.nan, 1], np.float32))
    assert corpus.folds is None


def test_synth_round_robin_heldout_and_truth(tmp_path):
    write_disfa(tmp_path, subjects=(1, 2, 3, 4, 5), n=3)
    (tmp_path / "auhm_truth").mkdir()
    for i in (1, 2, 3, 4, 5):
        write(tmp_path / "auhm_truth" / f"LeftVideoSN{i:03d}_comp.parquet", b"PAR1")
    corpus = load_sessions("synth", tmp_path)
    assert {s.subject: s.split for s in corpus} == {"SN001": "part1", "SN002": "part2", "SN003": "part3", "SN004": "part1", "SN005": "part2"}
    assert all(s.truth is not None and s.truth.name == f"{s.path.stem}.parquet" for s in corpus)
    write(tmp_path / "auhm_truth" / "manifest.json", json.dumps({"heldout": ["SN005"]}))
    corpus = load_sessions("synth", tmp_path)
    assert corpus.splits == {"part1": ["SN001", "SN004"], "part2": ["SN002"], "part3": ["SN003"], "test": ["SN005"]}
    assert corpus.folds == ["part1", "part2", "part3"]
    # The same tree read as DISFA uses the standard parts.
    assert {s.subject: s.split for s in load_sessions("disfa", tmp_path)}["SN002"] == "part1"


def test_csv_manifest(tmp_path):
    rows = ["video,frame,AU12,AU06,subject,split", "clips/a.mp4,0,1,9,p1,train", "clips/a.mp4,1,2,0,p1,train", "/abs/b.mp4,3,6,5,p2,val"]
    write(tmp_path / "m.csv", "\n".join(rows) + "\n")
    corpus = load_sessions("csv", tmp_path / "m.csv")
    assert corpus.aus == (6, 12)
    a, b = sorted(corpus, key=lambda s: s.key)[::-1]
    assert a.key == "clips/a.mp4" and a.path == tmp_path / "clips/a.mp4" and a.split == "train" and a.subject == "p1"
    assert str(b.path) == "/abs/b.mp4" and b.split == "val"
    assert np.isnan(a.labels["AU06"].iloc[0]) and b.labels["AU12"].isna().all()  # 9 and 6: out of 0–5
    write(tmp_path / "n.csv", "video,frame,AU01\nx.mp4,0,1\ny.mp4,0,2\nz.mp4,0,3\n")
    assert sorted(s.split for s in load_sessions("csv", tmp_path / "n.csv")) == ["part1", "part2", "part3"]


def test_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="unknown corpus kind"):
        load_sessions("affwild", tmp_path)
    with pytest.raises(UsageError, match="no such"):
        load_sessions("disfa", tmp_path / "nope")
    with pytest.raises(UsageError, match="no disfa sessions found"):
        load_sessions("disfa", tmp_path)
    write(tmp_path / "bad.csv", "a,b\n1,2\n")
    with pytest.raises(UsageError, match="video, frame and AUxx"):
        load_sessions("csv", tmp_path / "bad.csv")



def test_a_corpus_registered_in_one_place_is_read_split_and_scored_by_subject(tmp_path, request):
    """One spec is all a new corpus needs: its reader, split rule, AUs and subject ids are found through it."""
    from auhm.data import corpora
    from auhm.data.readers import Corpus, Session
    from auhm.data.splits import round_robin

    def read(root):
        labels = pd.DataFrame({"frame": [0, 1], "AU12": np.array([1, np.nan], np.float32)})
        sessions = [Session(key=f"P{k:02d}/clip.mp4", path=root / f"P{k:02d}" / "clip.mp4", subject=f"P{k:02d}", task="", kind="toy",
                            labels=labels.copy()) for k in range(4)]
        return Corpus("toy", root, (12,), sessions)

    corpora.corpus_kinds()  # the built-in corpora first
    corpora.register_corpus(corpora.CorpusSpec(
        "toy", (12,), read, lambda subjects, corpus: round_robin(subjects, ("a", "b")), expected="P01/clip.mp4", subject=r"(P\d\d)"))
    request.addfinalizer(lambda: corpora.CORPORA.unregister("toy"))
    assert "toy" in corpora.corpus_kinds()
    corpus = load_sessions("TOY", tmp_path)
    assert {s.subject: s.split for s in corpus} == {"P00": "a", "P01": "b", "P02": "a", "P03": "b"}
    assert corpus.splits == {"a": ["P00", "P02"], "b": ["P01", "P03"]} and corpus.folds is None
    assert corpora.subject_of("somewhere/P02/clip.mp4") == "P02"
    assert corpora.subject_of("Videos_LeftCamera/LeftVideoSN004_comp.avi") == "SN004"  # the others still
    table = load_labels("toy", tmp_path)
    assert len(table) == 8 and table["AU12"].isna().sum() == 4
    with pytest.raises(UsageError, match=r"unknown corpus kind 'nope'; choose one of aff-wild2, bp4d, csv, disfa, disfa-plus, feafa-plus, fera2017, synth, toy, unbc$"):
        load_sessions("nope", tmp_path)


def test_every_reader_ends_in_add_session(tmp_path):
    """The tail all readers share: labels → a session (labels copied, key relative to the root,
    sidecar found), or no labels → the failure named for the path."""
    import inspect

    from auhm.data import bp4d, csv_manifest, disfa, fera2017
    from auhm.data.readers import Corpus, add_session

    for module in (bp4d, csv_manifest, disfa, fera2017):
        source = inspect.getsource(module.read)
        assert "add_session(" in source and "Session(" not in source.replace("add_session(", ""), module.__name__
    (tmp_path / "auhm_truth").mkdir()
    (tmp_path / "auhm_truth" / "clip.parquet").write_bytes(b"")
    corpus = Corpus("toy", tmp_path, (12,), [])
    labels = pd.DataFrame({"frame": [0], "AU12": np.float32([1])})
    session = add_session(corpus, tmp_path / "a" / "clip.mp4", labels, "unused", subject="P01")
    assert corpus.sessions == [session] and session.key == "a/clip.mp4" and session.kind == "toy"
    assert session.truth == tmp_path / "auhm_truth" / "clip.parquet" and session.labels is not labels
    assert add_session(corpus, tmp_path / "b.mp4", None, "no labels for P02", subject="P02") is None
    assert [str(f) for f in corpus.failures] == [f"{tmp_path / 'b.mp4'}: no labels for P02"] and len(corpus.sessions) == 1
