import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from auhm import __version__
from auhm.io import au_columns, clean_labels, prediction_schema, read_labels, read_metadata, read_predictions, write_parquet_atomic


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
