"""`auhm prepare landmarks`: exit codes, per-file failures, the seeded group split, resume, and a
landmark network trained on the result."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.data import prepare_landmarks as prep
from auhm.data.shards import ShardDataset, list_shards
from auhm.data.splits import random_holdout

from helpers import face_points, write_dots_image, write_pts_file

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # it trains a landmark network


def write_photos(root, n: int = 6, faces_per_photo: int = 2) -> list[str]:
    """n photos of ``faces_per_photo`` faces each (300-W naming ``<photo>_<k>``), plus a bad .pts."""
    keys = []
    for i in range(n):
        for k in range(1, faces_per_photo + 1):
            p = face_points((k, 0), seed=i)
            write_pts_file(write_dots_image(root / f"helen/{1000 + i}_{k}.jpg", p).with_suffix(".pts"), p)
            keys.append(f"helen/{1000 + i}_{k}.jpg")
    write_dots_image(root / "helen/9999_1.jpg", face_points())
    (root / "helen/9999_1.pts").write_text("version: 1\nn_points: 68\n{\n1 2\n}\n")
    return keys


def run(*args):
    return CliRunner().invoke(app, ["prepare", "landmarks", *map(str, args)])


def test_cli_prepares_good_faces_reports_bad_files_exit_1(tmp_path):
    keys = write_photos(tmp_path / "c")
    res = run(tmp_path / "c", "--format", "300w", "--out", tmp_path / "out", "--size", "64", "--val-fraction", "0.34", "--quiet")
    assert res.exit_code == 1, res.output
    bad = str(tmp_path / "c/helen/9999_1.pts")
    assert f"error {bad}: n_points says 68, the file lists 1" in " ".join(res.output.split())
    assert "prepared 12 300w faces into 1 shards" in res.output
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["kind"] == "landmarks" and manifest["format"] == "300w" and manifest["aus"] == []
    assert manifest["faces"] == {"annotated": 13, "prepared": 12, "failed": 1}
    assert manifest["failures"] == [f"{bad}: n_points says 68, the file lists 1"]
    assert manifest["crop"]["size"] == 64 and manifest["landmark_backend"] == "annotation"
    ds = ShardDataset(list_shards(tmp_path / "out"), [])
    assert sorted(ds.video) == sorted(keys) and ds.labels.shape == (12, 0)
    assert ds.image(0).shape == (64, 64, 3)
    by_photo = {}
    for subject, split in zip(ds.subject, ds.split):
        by_photo.setdefault(subject, set()).add(split)
    assert all(len(s) == 1 for s in by_photo.values())  # a photo's faces never straddle the split
    assert manifest["splits"]["dev"] == sorted(s for s, sp in by_photo.items() if sp == {"dev"})
    assert len(manifest["splits"]["dev"]) == 2 and len(manifest["splits"]["train"]) == 5  # 7 photos (the bad one's too): round(0.34 × 7) held out


@pytest.mark.parametrize("args, message", [
    ([], "kind landmarks needs --format (300w, 300w-lp, ls3d-w, wflw)"),
    (["--format", "afw"], "unknown landmark format 'afw'"),
    (["--format", "300w", "--landmarks", "dlib"], "cut with its own points"),
    (["--format", "300w", "--val-fraction", "1"], "--val-fraction must be in [0, 1)"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    write_photos(tmp_path / "c", n=2)
    res = run(tmp_path / "c", "--out", tmp_path / "out", *args)
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output


def test_format_with_another_kind_and_an_empty_root_exit_2(tmp_path):
    res = CliRunner().invoke(app, ["prepare", "disfa", str(tmp_path), "--out", str(tmp_path / "o"), "--format", "300w"])
    assert res.exit_code == 2 and "--format is for kind landmarks" in res.output
    res = run(tmp_path, "--format", "wflw", "--out", tmp_path / "o")
    assert res.exit_code == 2 and "no wflw faces found" in res.output


def test_random_holdout_is_seeded_and_by_group():
    groups = [f"g{i}" for i in range(20)]
    a = random_holdout(groups, 0.25, seed=1)
    assert sorted(a) == sorted(groups) and sum(v == "dev" for v in a.values()) == 5
    assert random_holdout(groups[::-1] * 2, 0.25, seed=1) == a  # order and repeats do not matter
    assert random_holdout(groups, 0.25, seed=2) != a
    assert set(random_holdout(groups, 0.0, seed=1).values()) == {"train"}
    assert list(random_holdout(["only"], 0.5, seed=0).values()) == ["train"]
    assert sum(v == "dev" for v in random_holdout(groups[:3], 0.01, seed=0).values()) == 1


def test_resume_skips_finished_shards_and_refuses_other_settings(tmp_path, monkeypatch):
    monkeypatch.setattr(prep, "SHARD_FACES", 5)
    write_photos(tmp_path / "c", n=5)  # 11 faces: shards of 5, 5, 1
    config = prep.LandmarkPrepareConfig(crop=prep.CropConfig(size=48))
    first = prep.prepare_landmarks("300w", tmp_path / "c", tmp_path / "out", config, quiet=True)
    assert first.written == ["300w-00000.parquet", "300w-00001.parquet", "300w-00002.parquet"] and first.frames == 10
    (tmp_path / "out/shards/300w-00001.parquet").unlink()  # as if killed while writing it
    before = (tmp_path / "out/shards/300w-00000.parquet").stat().st_mtime_ns
    again = prep.prepare_landmarks("300w", tmp_path / "c", tmp_path / "out", config, quiet=True)
    assert again.resumed == ["300w-00000.parquet", "300w-00002.parquet"] and again.written == ["300w-00001.parquet"]
    assert (tmp_path / "out/shards/300w-00000.parquet").stat().st_mtime_ns == before
    assert [str(f) for f in again.failures] == [str(f) for f in first.failures] and len(first.failures) == 1
    manifest = json.loads((tmp_path / "out/manifest.json").read_text())
    assert manifest["faces"] == {"annotated": 11, "prepared": 10, "failed": 1}
    with pytest.raises(prep.UsageError, match="another crop or split"):
        prep.prepare_landmarks("300w", tmp_path / "c", tmp_path / "out", prep.LandmarkPrepareConfig(crop=prep.CropConfig(size=64)), quiet=True)
    with pytest.raises(prep.UsageError, match="another crop or split"):
        prep.prepare_landmarks("300w", tmp_path / "c", tmp_path / "out", prep.LandmarkPrepareConfig(crop=prep.CropConfig(size=48), seed=5), quiet=True)


def test_landmark_network_trains_on_a_prepared_landmark_corpus(tmp_path):
    from auhm.train.config import TrainConfig
    from auhm.train.trainer import train

    write_photos(tmp_path / "c", n=4)
    res = run(tmp_path / "c", "--format", "300w", "--out", tmp_path / "out", "--size", "64", "--val-fraction", "0.25", "--quiet")
    assert res.exit_code == 1
    result = train(TrainConfig(data=tmp_path / "out", out=tmp_path / "run", task="landmarks", method="landmarks", preset="small",
                               batch_size=4, epochs=1, max_steps=1, workers=0, device="cpu", precision="fp32", quiet=True))
    assert result.val_split == "dev" and np.isfinite(result.best["val_nme"])
