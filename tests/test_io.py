import hashlib

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from auhm import __version__
from auhm.errors import InputError, failure_reason
from auhm.io import (
    ParquetStream,
    au_columns,
    clean_labels,
    encode_metadata,
    file_sha256,
    prediction_schema,
    read_labels,
    read_metadata,
    read_predictions,
    with_people,
    write_parquet_atomic,
)


def test_prediction_schema_and_metadata(tmp_path):
    schema = prediction_schema([1, 12], {"checkpoint": "abc", "aus": [1, 12]})
    assert schema.names[:10] == ["video", "frame", "timestamp", "face", "success", "confidence", "x0", "y0", "x1", "y1"]
    assert schema.names[10:] == ["AU01", "AU12"]
    df = pd.DataFrame({n: [] for n in schema.names})
    p = write_parquet_atomic(df, tmp_path / "p.parquet", schema=schema)
    meta = read_metadata(p)
    assert meta == {"version": __version__, "checkpoint": "abc", "aus": [1, 12]}
    assert str(pq.read_schema(p).field("frame").type) == "int32"
    assert not list(tmp_path.glob(".*tmp"))


def test_labels_outside_0_5_become_null(tmp_path):
    df = pd.DataFrame({"video": ["a"] * 4, "frame": [0, 1, 2, 3], "AU01": [0, 5, 9, -1], "AU12": [1, 2, 3, 4]})
    out = clean_labels(df)
    assert out["AU01"].isna().tolist() == [False, False, True, True]
    df.to_csv(tmp_path / "l.csv", index=False)
    assert read_labels(tmp_path / "l.csv")["AU01"].isna().sum() == 2
    assert au_columns(["AU12", "x", "AU01", "AU5"]) == ["AU01", "AU5", "AU12"]


def test_openface_csv_is_read_as_predictions(tmp_path):
    csv = tmp_path / "of.csv"
    csv.write_text("frame, face_id, timestamp, confidence, success, AU01_r, AU12_r, AU01_c\n1, 0, 0.0, 0.98, 1, 1.5, 0.2, 1\n2, 0, 0.04, 0.1, 0, 0.0, 0.0, 0\n")
    df = read_predictions(csv)
    assert df["frame"].tolist() == [0, 1]
    assert df["video"].tolist() == ["of", "of"]
    assert np.isclose(df["AU01"][0], 1.5) and np.isnan(df["AU01"][1])
    assert "AU01_c" not in df


def test_checkpoint_hash_is_one_key_and_the_old_evaluate_key_still_reads(tmp_path):
    ckpt = tmp_path / "m.pt"
    ckpt.write_bytes(b"weights" * 1000)
    assert file_sha256(ckpt) == hashlib.sha256(b"weights" * 1000).hexdigest()
    old = tmp_path / "old.parquet"  # as auhm evaluate wrote it before: the path under "checkpoint"
    pq.write_table(pa.table({"frame": [0]}).replace_schema_metadata(encode_metadata({"checkpoint": str(ckpt), "checkpoint_sha256": "a" * 64})), old)
    meta = read_metadata(old)
    assert meta["checkpoint"] == "a" * 64 and meta["checkpoint_path"] == str(ckpt) and "checkpoint_sha256" not in meta


def test_parquet_stream_appears_whole_or_not_at_all(tmp_path):
    schema = pa.schema([pa.field("frame", pa.int32())], metadata={b"auhm.kind": b'"test"'})
    out = tmp_path / "s.parquet"
    with ParquetStream(out, schema, row_group_rows=3) as stream:
        for start in range(0, 10, 2):
            stream.append(pa.RecordBatch.from_arrays([pa.array(np.arange(start, start + 2, dtype=np.int32))], schema=schema))
            assert not out.exists()  # only the temp file until the end
        stream.commit({"notes": {"n": 10}})
    assert pq.read_table(out).column("frame").to_pylist() == list(range(10))
    assert pq.ParquetFile(out).metadata.num_row_groups == 3  # 4 + 4 + 2 rows: groups of at least 3
    assert read_metadata(out) == {"kind": "test", "notes": {"n": 10}}
    with pytest.raises(RuntimeError, match="broke"):
        with ParquetStream(tmp_path / "t.parquet", schema) as stream:
            stream.append(pa.RecordBatch.from_arrays([pa.array(np.arange(2, dtype=np.int32))], schema=schema))
            raise RuntimeError("broke")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.parquet"]  # no output, no temp file left


def test_a_stream_rewritten_at_its_commit_joins_face_ids_and_keeps_its_metadata(tmp_path):
    """Face ids joined into people after the video: every id mapped, a null face stays null, the
    notes and the schema's metadata kept, and still nothing in place until the commit."""
    schema = prediction_schema([12], {"checkpoint": "abc"})
    faces = [0, 1, None, 2, 1, 3]
    n = len(faces)
    columns = {"video": ["v"] * n, "frame": list(range(n)), "timestamp": [0.0] * n, "face": faces,
               "success": [f is not None for f in faces], "confidence": [1.0] * n,
               "x0": [0.0] * n, "y0": [0.0] * n, "x1": [1.0] * n, "y1": [1.0] * n, "AU12": [0.5] * n}
    table = pa.Table.from_pydict(columns, schema=schema)
    out = tmp_path / "v.parquet"
    with ParquetStream(out, schema, row_group_rows=2) as stream:
        stream.append(table)
        stream.commit({"notes": {"tracks": 2}}, rewrite=lambda t: with_people(t, {0: 0, 1: 1, 2: 0, 3: 1}))
    assert pq.read_table(out).column("face").to_pylist() == [0, 1, None, 0, 1, 1]
    assert read_metadata(out) == {"version": __version__, "checkpoint": "abc", "notes": {"tracks": 2}}
    assert pq.read_schema(out).field("face").type == pa.int16()
    assert with_people(table, {1: 0}).column("face").to_pylist() == [0, 0, None, 2, 0, 3]  # ids not named stay
    handed = with_people(table, {0: 0, 1: 1, 2: 0, 3: 1}, {1: {4: 3}, 3: {1: 0}})  # id 1's row on frame 4 is id 3's; frame 1 has no id 3
    assert handed.column("face").to_pylist() == [0, 1, None, 0, 1, 1]
    assert with_people(table, {}, {1: {1: 2, 4: 0}, 2: {1: 5, 3: 1}}).column("face").to_pylist() == [0, 2, None, 1, 0, 3]  # each row moved once
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.parquet"]


def test_failure_reason_is_one_line_without_the_path_and_names_a_surprise():
    assert failure_reason(InputError("clip.mp4: cannot decode (bad data)\nmore"), "clip.mp4") == "cannot decode (bad data)"
    assert failure_reason(FileNotFoundError("no landmark sidecar clip.parquet"), "clip.mp4") == "no landmark sidecar clip.parquet"
    assert failure_reason(KeyError("x_3"), "clip.mp4") == "KeyError: 'x_3'"
    assert failure_reason(RuntimeError()) == "RuntimeError"
