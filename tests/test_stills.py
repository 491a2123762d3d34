"""`auhm synth --layout landmarks`: the 300-W layout read back by the real reader, determinism,
identities apart from the AU subjects, and how widely the stills vary."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from auhm.cli import app
from auhm.data.ibug300w import read_pts
from auhm.data.prepare_landmarks import LandmarkPrepareConfig, prepare_landmarks
from auhm.data.shards import ShardDataset, list_shards
from auhm.face import CropConfig
from auhm.synth import SynthConfig, make_corpus
from auhm.synth.corpus import LAYOUTS, simulate_subject
from auhm.synth.drawing import DIFFICULTIES, noise_bank
from auhm.synth.stills import IDENTITY_STREAM, NOISE_FRAMES, STILL_POSE, identity_renderer, images_per_identity

SMALL = dict(width=128, height=96, contact_sheet=False)


def stills(out, **kw):
    make_corpus(SynthConfig(out, layout="landmarks", **{**SMALL, **kw}), quiet=True)
    return out


def test_cli_writes_the_300w_layout_that_prepare_reads(tmp_path):
    out = tmp_path / "lm"
    res = CliRunner().invoke(app, ["synth", str(out), "--layout", "landmarks", "--identities", "4", "--images", "10",
                                   "--size", "128x96", "--seed", "3", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "wrote 10 face images with .pts landmarks of 4 identities" in " ".join(res.output.split())
    names = sorted(p.name for p in (out / "faces").iterdir())
    stems = [f"id{i:05d}_{k:04d}" for i, n in enumerate([3, 3, 2, 2]) for k in range(n)]
    assert names == sorted([f"{s}.jpg" for s in stems] + [f"{s}.pts" for s in stems])
    truth = pd.read_parquet(out / "auhm_truth/stills.parquet")
    assert truth["image"].tolist() == [f"faces/{s}.jpg" for s in stems] and truth["identity"].nunique() == 4
    manifest = json.loads((out / "auhm_truth/manifest.json").read_text())
    assert manifest["layout"] == "landmarks" and manifest["images"] == 10 and manifest["identities"] == 4
    assert (out / "auhm_truth/contact_sheet.png").exists()
    noise = noise_bank(np.random.default_rng(np.random.SeedSequence([3, IDENTITY_STREAM])), NOISE_FRAMES, 128, 96, DIFFICULTIES["medium"].noise)
    renderer = identity_renderer(3, 1, 3, 128, 96, "medium", noise)
    for k in range(3):
        np.testing.assert_allclose(read_pts(out / f"faces/id00001_{k:04d}.pts"), renderer.landmarks[k], atol=6e-4)

    prepare_landmarks("300w", out, tmp_path / "prepared", LandmarkPrepareConfig(crop=CropConfig(size=64), val_fraction=0.25, seed=1), quiet=True)
    ds = ShardDataset(list_shards(tmp_path / "prepared"), [])
    assert len(ds) == 10 and sorted(set(ds.subject)) == [f"id{i:05d}" for i in range(4)]
    splits_of = {}
    for subject, split in zip(ds.subject, ds.split):
        splits_of.setdefault(subject, set()).add(split)
    assert all(len(s) == 1 for s in splits_of.values()) and set(ds.split) == {"train", "dev"}  # by identity


def test_same_seed_same_files_other_seed_other_files(tmp_path):
    a, b, c = (stills(tmp_path / n, identities=2, images=4, seed=s) for n, s in (("a", 7), ("b", 7), ("c", 8)))
    for name in ("id00001_0001.jpg", "id00001_0001.pts"):
        assert (a / "faces" / name).read_bytes() == (b / "faces" / name).read_bytes()
        assert (a / "faces" / name).read_bytes() != (c / "faces" / name).read_bytes()


def test_an_identity_is_the_same_whichever_run_makes_it(tmp_path):
    whole = stills(tmp_path / "whole", identities=3, images=6, seed=2)
    alone = stills(tmp_path / "alone", identities=1, images=2, seed=2, first_subject=2)
    assert sorted(p.name for p in (alone / "faces").iterdir())[0] == "id00002_0000.jpg"
    for name in ("id00002_0000.jpg", "id00002_0001.pts"):
        assert (whole / "faces" / name).read_bytes() == (alone / "faces" / name).read_bytes()


def test_landmark_identities_are_never_the_au_subjects():
    """Identity i of the landmark layout and subject i of the AU layouts draw from other seeds."""
    for seed in (0, 11):
        config = SynthConfig("/nonexistent", subjects=1, frames=2, seed=seed)
        for i in range(6):
            subject = simulate_subject(config, i, LAYOUTS["disfa"]()).renderer.model.identity
            still = identity_renderer(seed, i, 2, 128, 96, "medium", noise=[(np.zeros((96, 128, 3), np.uint8),) * 2]).model.identity
            assert subject != still and subject.jaw_width != still.jaw_width


def test_stills_vary_in_pose_expression_place_size_and_occlusion(tmp_path):
    out = stills(tmp_path / "lm", identities=10, images=60, seed=4, difficulty="hard")
    truth = pd.read_parquet(out / "auhm_truth/stills.parquet")
    yaw_max, pitch_max, roll_max = STILL_POSE["hard"]
    assert truth["yaw"].abs().max() <= yaw_max and truth["yaw"].max() - truth["yaw"].min() > yaw_max
    assert truth["roll"].max() - truth["roll"].min() > roll_max and truth["pitch"].max() - truth["pitch"].min() > pitch_max
    aus = truth[[c for c in truth if c.startswith("AU")]].to_numpy()
    assert 0.3 < (aus.max(axis=1) >= 1).mean() < 1.0  # expressions, and some neutral faces
    assert truth["occluded"].sum() >= 3
    points = np.stack([read_pts(out / p.replace(".jpg", ".pts")) for p in truth["image"]])
    widths = points[:, :, 0].max(1) - points[:, :, 0].min(1)
    centres = points.mean(axis=1)
    assert widths.max() / widths.min() > 2 and centres[:, 0].std() > 16 and centres[:, 1].std() > 10
    assert ((points < 0) | (points[..., :1] > 127) | (points[..., 1:] > 95)).any(axis=(1, 2)).sum() >= 2  # some faces cut by the border


def test_images_are_dealt_evenly():
    assert images_per_identity(10, 4) == [3, 3, 2, 2] and images_per_identity(6, 6) == [1] * 6


@pytest.mark.parametrize("args, message", [
    (["--layout", "landmarks", "--subjects", "3"], "give --identities and --images"),
    (["--identities", "5"], "--identities and --images are for --layout landmarks"),
    (["--layout", "landmarks", "--identities", "5", "--images", "4"], "--images ≥ --identities"),
    (["--layout", "faces"], "choose one of bp4d, disfa, fera2017, landmarks"),
])
def test_bad_options_are_usage_errors(tmp_path, args, message):
    res = CliRunner().invoke(app, ["synth", str(tmp_path / "x"), *args])
    assert res.exit_code == 2 and message in " ".join(res.output.split()), res.output
