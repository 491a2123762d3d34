"""Training and evaluation on a tiny drawn corpus (3 subjects, 128-px crops, the small preset).

The crops show a schematic face whose landmarks are drawn as dots and whose AUs are drawn as
discs at their Table 1 centres, with brightness and radius growing with the intensity, so the
networks have something real to learn in a few dozen steps.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch

from auhm.data.shards import ShardRows
from auhm.io import prediction_schema
from auhm.targets import AU_TABLE, au_name
from auhm.train.config import TrainConfig
from auhm.train.folds import run_training
from auhm.train.sampling import EpochBatches
from auhm.train.trainer import train

AUS = (1, 4, 12, 25)
SIZE = 128
pytestmark = pytest.mark.usefixtures("one_torch_thread")


def template_landmarks() -> np.ndarray:
    """A schematic frontal 68-point iBUG shape in unit coordinates."""
    p = np.zeros((68, 2))
    t = np.pi - np.pi * np.arange(17) / 16
    p[0:17] = np.c_[0.5 + 0.4 * np.cos(t), 0.45 + 0.45 * np.sin(t)]
    p[17:22] = np.c_[np.linspace(0.2, 0.42, 5), 0.3 - 0.03 * np.sin(np.linspace(0, np.pi, 5))]
    p[22:27] = np.c_[np.linspace(0.58, 0.8, 5), 0.3 - 0.03 * np.sin(np.linspace(0, np.pi, 5))]
    p[27:31] = np.c_[np.full(4, 0.5), np.linspace(0.38, 0.58, 4)]
    p[31:36] = np.c_[np.linspace(0.42, 0.58, 5), np.full(5, 0.62)]
    for start, cx in ((36, 0.33), (42, 0.67)):
        p[start : start + 6] = np.c_[cx + np.array([-0.07, -0.025, 0.025, 0.07, 0.025, -0.025]), 0.42 + np.array([0, -0.03, -0.03, 0, 0.03, 0.03])]
    a = np.pi - np.pi * np.arange(7) / 6
    p[48:55] = np.c_[0.5 + 0.15 * np.cos(a), 0.76 - 0.06 * np.sin(a)]
    b = np.pi * np.arange(1, 6) / 6
    p[55:60] = np.c_[0.5 + 0.15 * np.cos(b), 0.76 + 0.06 * np.sin(b)]
    p[60:68] = np.c_[0.5 + np.array([-0.1, -0.05, 0, 0.05, 0.1, 0.05, 0, -0.05]), 0.76 + np.array([0, -0.02, -0.02, -0.02, 0, 0.02, 0.02, 0.02])]
    return p


def draw_face(rng: np.random.Generator, labels: np.ndarray, tone: int) -> tuple[np.ndarray, np.ndarray]:
    """One crop and its landmarks: a jittered template, dots on the landmarks, discs on the AUs."""
    angle = rng.uniform(-0.15, 0.15)
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    lms = ((template_landmarks() - 0.5) @ rot.T * rng.uniform(0.75, 0.9) + 0.5 + rng.uniform(-0.04, 0.04, 2)) * SIZE
    img = np.clip(rng.normal(60, 12, (SIZE, SIZE, 3)), 0, 255).astype(np.uint8)
    centre = tuple(int(v) for v in lms[[0, 16, 8]].mean(axis=0))
    cv2.ellipse(img, centre, (int(SIZE * 0.36), int(SIZE * 0.45)), np.degrees(angle), 0, 360, (tone, tone - 30, tone - 60), -1)
    for x, y in lms:
        cv2.circle(img, (int(round(x)), int(round(y))), 1, (20, 20, 20), -1)
    for j, au in enumerate(AUS):
        a = 0.0 if np.isnan(labels[j]) else labels[j]
        for idx in AU_TABLE[au]:
            cx, cy = lms[idx].mean(axis=0)
            cv2.circle(img, (int(round(cx)), int(round(cy))), int(2 + 1.2 * a), (255, int(50 * a), 255 - int(40 * a)), -1)
    return img, lms.astype(np.float32)


def make_corpus(root: Path, subjects: int = 3, frames: int = 40, seed: int = 0, layout: str = "folds") -> Path:
    """A prepared corpus: shards, labels.parquet, manifest.json (folds part1..3, or train/dev)."""
    rng = np.random.default_rng(seed)
    (root / "shards").mkdir(parents=True, exist_ok=True)
    splits: dict[str, list[str]] = {}
    videos, label_rows = {}, []
    for s in range(subjects):
        subject = f"SN{s + 1:03d}"
        split = f"part{s + 1}" if layout == "folds" else ("dev" if s == subjects - 1 else "train")
        splits.setdefault(split, []).append(subject)
        video = f"Videos_LeftCamera/LeftVideo{subject}_comp.avi"
        rows = ShardRows(video, subject, split, AUS)
        phase = rng.uniform(0, 2 * np.pi, len(AUS))
        tone = int(rng.integers(170, 230))
        for f in range(frames):
            labels = np.round(np.clip(2.5 + 3 * np.sin(2 * np.pi * f / 17 + phase + np.arange(len(AUS))), 0, 5)).astype(np.float32)
            if f % 7 == 3:
                labels[0] = np.nan  # unlabelled AU: masked out of the loss
            img, lms = draw_face(rng, labels, tone)
            affine = np.array([[0.5, 0, -20.0 - s], [0, 0.5, -10.0]], np.float32)
            rows.add(f, img, lms, affine, labels)
            label_rows.append({"video": video, "frame": f, **{au_name(a): labels[j] for j, a in enumerate(AUS)}})
        rows.write(root / "shards" / f"{subject}.parquet")
        videos[video] = {"subject": subject, "split": split, "frames": frames, "labelled": frames, "skipped": {}}
    pd.DataFrame(label_rows).astype({au_name(a): "float32" for a in AUS}).to_parquet(root / "labels.parquet", index=False)
    manifest = {
        "kind": "synth",
        "aus": list(AUS),
        "crop": {"size": SIZE, "scale": 1.3, "shift_y": -0.08},
        "landmark_backend": "truth",
        "splits": splits,
        "folds": sorted(splits) if layout == "folds" else None,
        "videos": videos,
    }
    (root / "manifest.json").write_text(json.dumps(manifest))
    return root


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    return make_corpus(tmp_path_factory.mktemp("corpus"))


def small(data: Path, out: Path, **kw) -> TrainConfig:
    base = dict(data=data, out=out, preset="small", batch_size=8, epochs=1, workers=0, device="cpu", precision="fp32", quiet=True)
    return TrainConfig(**{**base, **kw})


@pytest.fixture(scope="module")
def landmark_run(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fan")
    train(small(corpus, out, task="landmarks", epochs=2))
    return out


# ── sampling and splits ─────────────────────────────────────────────────────────────────────
def test_epoch_batches_shard_ranks_and_skip_done_batches():
    batches = list(EpochBatches(23, 4, seed=1))
    assert [len(b) for b in batches] == [4] * 5  # drop_last: five full batches; the 3 left over are not trained on this epoch
    positions = [p for b in batches for p, _ in b]
    assert len(set(positions)) == 20 and set(positions) <= set(range(23)) and positions != sorted(positions)
    assert list(EpochBatches(23, 4, seed=1)) == batches and list(EpochBatches(23, 4, seed=2)) != batches
    ranks = [[p for b in EpochBatches(23, 4, seed=1, rank=r, world=2) for p, _ in b] for r in range(2)]
    assert not set(ranks[0]) & set(ranks[1]) and len(ranks[0]) == len(ranks[1]) == 8
    s = EpochBatches(23, 4, seed=1)
    s.set_epoch(0, start=2)
    assert [b for b in s] == list(EpochBatches(23, 4, seed=1))[2:]
    s.set_epoch(1)
    assert list(s) != list(EpochBatches(23, 4, seed=1)) and all(e == 1 for b in s for _, e in b)


def test_splits_hold_out_whole_subjects(corpus, tmp_path):
    from auhm.train.prepared import load_prepared, split_corpus

    c = load_prepared(corpus)
    sp = split_corpus(c.manifest, c.shards, fold=2)
    assert sp.name == "part2" and sp.val_subjects == ["SN002"]
    assert not set(c.shards.subject[sp.train]) & set(c.shards.subject[sp.val])
    no_folds = {**c.manifest, "folds": None, "splits": {}}
    a, b = split_corpus(no_folds, c.shards, seed=3), split_corpus(no_folds, c.shards, seed=3)
    assert a.val_subjects == b.val_subjects and len(a.val_subjects) == 1
    dev = load_prepared(make_corpus(tmp_path / "dev", frames=6, layout="devsplit"))
    sp = split_corpus(dev.manifest, dev.shards)
    assert sp.name == "dev" and set(dev.shards.split[sp.train]) == {"train"}


def test_landmark_nme_against_a_hand_computed_value():
    from auhm.train.evaluate import landmark_nme

    true = np.zeros((2, 68, 2))
    true[:, 45, 0] = 10.0  # inter-ocular distance 10 (outer corners 36 at 0 and 45 at 10)
    pred = true.copy()
    pred[0] += [3.0, 4.0]  # every point 5 px off: NME 0.5
    assert landmark_nme(pred, true) == pytest.approx((0.5 + 0.0) / 2)


# ── training ────────────────────────────────────────────────────────────────────────────────
def test_scratch_loss_decreases_and_run_files_are_written(corpus, tmp_path):
    out = tmp_path / "scratch"
    result = train(small(corpus, out, method="scratch", epochs=4, lr=3e-3))
    losses = np.array(result.step_losses)
    assert len(losses) == 40  # 80 training frames (one subject held out) / 8, four epochs
    # The head starts near zero, so the first losses are those of all-zero maps: learning must beat them.
    assert losses[-5:].mean() < 0.8 * losses[:5].mean()
    assert result.warning is None  # it learned: no warning
    hist = pd.read_csv(out / "history.csv")
    assert list(hist.columns[:3]) == ["epoch", "step", "train_loss"]
    assert {"val_icc", "val_mse", "val_spread", "lr", "images_per_s", "seconds", "warning"} <= set(hist.columns)
    assert len(hist) == 4 and hist["lr"].is_monotonic_decreasing and (hist["images_per_s"] > 0).all()
    assert hist["warning"].isna().all()
    assert (out / "curves.png").stat().st_size > 1000 and (out / "best.pt").exists() and (out / "last.pt").exists()
    from auhm.models import load_checkpoint

    model, info = load_checkpoint(out / "best.pt")
    assert info["method"] == "scratch" and info["aus"] == list(AUS) and info["crop"]["size"] == SIZE
    assert info["train_config"]["batch_size"] == 8 and info["val_split"] == "subjects" and info["task"] == "au"
    assert info["metrics"]["val_icc"] == pytest.approx(hist["val_icc"].max())


def test_landmark_network_reports_nme_and_serves_as_backbone(landmark_run, corpus, tmp_path):
    hist = pd.read_csv(landmark_run / "history.csv")
    assert "val_nme" in hist and np.isfinite(hist["val_nme"]).all()
    assert hist["train_loss"].iloc[-1] < hist["train_loss"].iloc[0]
    # the NME logged in training is the one `evaluate` recomputes from the checkpoint on its own
    from auhm.train.config import EvaluateConfig
    from auhm.train.evaluate import evaluate

    best = evaluate(EvaluateConfig(landmark_run / "best.pt", corpus, device="cpu", precision="fp32", workers=0, quiet=True))
    assert best.scores.loc["NME", "Avg."] == pytest.approx(hist["val_nme"].min(), rel=1e-5)
    from auhm.models import build_model, load_checkpoint
    from auhm.models.transfer import landmark_state_dict

    landmark_net, _ = load_checkpoint(landmark_run / "best.pt", task="landmarks")
    learned = landmark_state_dict(landmark_run / "best.pt")
    for method in ("finetune", "adaptation", "attention", "reparam"):
        result = train(small(corpus, tmp_path / method, method=method, backbone=landmark_run / "best.pt", max_steps=4))
        assert len(result.step_losses) == 4 and np.isfinite(result.step_losses).all()
        assert np.isfinite(result.best["val_mse"])
    # The backbone is the landmark network trained above: its weights (frozen under adaptation and
    # attention, the start of fine-tuning), and its maps are the landmark network's own.
    x = torch.rand(2, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(0))
    for method in ("adaptation", "attention"):
        model, _ = load_checkpoint(tmp_path / method / "last.pt")
        for name, value in model.backbone.state_dict().items():
            torch.testing.assert_close(value, learned[name], msg=f"{method}: backbone {name}")
        with torch.no_grad():
            torch.testing.assert_close(model(x)["landmark_heatmaps"], landmark_net(x)["heatmaps"])
    start = build_model("finetune", AUS, "small", backbone=str(landmark_run / "best.pt")).net.state_dict()
    assert all(torch.equal(start[k], v) for k, v in learned.items() if not k.startswith("head."))
    # ... and the AU maps depend on it: another backbone under the same adaptation layers answers otherwise.
    model, _ = load_checkpoint(tmp_path / "adaptation" / "last.pt")
    with torch.no_grad():
        before = model(x)["heatmaps"]
        model.backbone.load_state_dict({k: v * 0.5 if v.is_floating_point() else v for k, v in learned.items()})
        assert (model(x)["heatmaps"] - before).abs().max() > 1e-3


@pytest.mark.parametrize("method", ["random-backbone", "resnet18"])
def test_methods_without_a_backbone_train(corpus, tmp_path, method):
    result = train(small(corpus, tmp_path / method, method=method, max_steps=4, batch_size=4))
    assert len(result.step_losses) == 4 and np.isfinite(result.step_losses).all()


def test_transfer_method_without_backbone_is_a_usage_error(corpus, tmp_path):
    from auhm.errors import UsageError

    with pytest.raises(UsageError, match="--backbone"):
        train(small(corpus, tmp_path / "x", method="adaptation"))


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")  # the stand-in step takes no optimiser step
def test_a_diverged_run_is_a_run_that_failed_not_a_usage_error(tmp_path, monkeypatch):
    from auhm.errors import RunFailed, UsageError
    from auhm.train import trainer

    monkeypatch.setattr(trainer, "train_step", lambda *args, **kwargs: torch.tensor(float("nan")))
    corpus = make_corpus(tmp_path / "c", frames=6)
    with pytest.raises(RunFailed, match=r"^training diverged at step 1 \(loss nan\); lower --lr") as e:
        train(small(corpus, tmp_path / "run", method="scratch", batch_size=4, fold=1))
    assert not isinstance(e.value, UsageError)


def test_resume_continues_exactly(tmp_path):
    corpus = make_corpus(tmp_path / "c", frames=12)
    cfg = dict(method="scratch", epochs=2, batch_size=4, fold=1)
    full = train(small(corpus, tmp_path / "full", **cfg)).step_losses
    assert len(full) == 2 * 6  # 24 training frames / 4 per batch, two epochs
    cut = train(small(corpus, tmp_path / "cut", max_steps=7, checkpoint_every=5, **cfg)).step_losses
    assert cut == full[:7]
    rest = train(small(corpus, tmp_path / "other", resume=tmp_path / "cut")).step_losses
    assert len(rest) == len(full) - 7
    np.testing.assert_allclose(rest, full[7:], rtol=1e-5)
    assert rest[0] == pytest.approx(full[7], rel=1e-6)


class Killed(BaseException):
    """A kill -9 in the middle of a step, as far as the files on disk can tell."""


def test_resuming_k_fold_training_continues_the_fold_it_stopped_in_and_pools_the_same_predictions(tmp_path, monkeypatch):
    """Killed in fold 2, one step after its last resume point: --resume keeps fold 1 (done), goes
    on with fold 2 from that point and trains fold 3; the fold checkpoints and the pooled
    out-of-fold predictions equal those of a run never interrupted."""
    from auhm.models import load_checkpoint
    from auhm.train.trainer import Trainer

    corpus = make_corpus(tmp_path / "c", frames=6)  # per fold: 12 training frames, 3 steps of 4
    cfg = dict(method="scratch", folds=3, epochs=1, batch_size=4, checkpoint_every=1)
    whole = run_training(small(corpus, tmp_path / "whole", **cfg))
    assert [len(f.step_losses) for f in whole.folds] == [3, 3, 3]

    step = Trainer._step

    def step_or_die(self, batch):
        if self.config.fold == 2 and self.progress.step == 2:  # its 3rd step: resume.pt holds step 2
            raise Killed
        return step(self, batch)

    with monkeypatch.context() as m:
        m.setattr(Trainer, "_step", step_or_die)
        with pytest.raises(Killed):
            run_training(small(corpus, tmp_path / "cut", **cfg))
    assert (tmp_path / "cut" / "fold1" / "last.pt").exists() and not (tmp_path / "cut" / "fold3").exists()
    resumed = run_training(small(corpus, tmp_path / "elsewhere", resume=tmp_path / "cut"))
    assert [len(f.step_losses) for f in resumed.folds] == [0, 1, 3]  # fold 1 not trained again
    np.testing.assert_allclose(resumed.folds[1].step_losses, whole.folds[1].step_losses[2:], rtol=1e-5)
    for k in (1, 2, 3):
        a, _ = load_checkpoint(tmp_path / "whole" / f"fold{k}" / "last.pt")
        b, _ = load_checkpoint(tmp_path / "cut" / f"fold{k}" / "last.pt")
        for (name, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
            torch.testing.assert_close(y, x, rtol=1e-5, atol=1e-6, msg=f"fold {k}: {name}")
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "cut" / "oof_predictions.parquet"),
                                  pd.read_parquet(tmp_path / "whole" / "oof_predictions.parquet"), rtol=1e-5)
    pd.testing.assert_frame_equal(resumed.scores, whole.scores, rtol=1e-5)


def test_best_checkpoint_skips_epochs_whose_icc_is_nan(tmp_path, monkeypatch):
    """A constant predictor's ICC is NaN: best.pt is the first epoch only until a number comes,
    and a NaN after a number never replaces it (NME is lower-better)."""
    from auhm.models import read_checkpoint_info
    from auhm.train import trainer
    from auhm.train.trainer import is_better

    nan = float("nan")
    assert is_better(nan, None, "val_icc") and not is_better(nan, 0.3, "val_icc")
    assert is_better(0.1, nan, "val_icc") and is_better(0.4, 0.3, "val_icc") and not is_better(0.2, 0.3, "val_icc")
    assert is_better(0.1, 0.2, "val_nme") and not is_better(0.3, 0.2, "val_nme") and not is_better(nan, 0.2, "val_nme")

    iccs = iter([nan, 0.2, nan, 0.1])
    monkeypatch.setattr(trainer, "validation_metrics", lambda *a, **k: {"val_icc": next(iccs), "val_mse": 1.0, "val_spread": 0.5})
    corpus = make_corpus(tmp_path / "c", frames=6)
    result = train(small(corpus, tmp_path / "run", method="scratch", epochs=4, batch_size=4, fold=1))
    assert result.best["epoch"] == 2.0 and result.best["val_icc"] == 0.2
    info = read_checkpoint_info(tmp_path / "run" / "best.pt")
    assert info["epoch"] == 2.0 and info["metrics"]["val_icc"] == 0.2
    assert read_checkpoint_info(tmp_path / "run" / "last.pt")["epoch"] == 4.0


def test_training_with_two_threads_builds_batches_in_a_forked_helper_and_steps_as_with_one(tmp_path, torch_threads, monkeypatch):
    """With two torch threads the CPU loader builds each batch in this process and a forked
    helper (``batch_loader``); the steps are exactly those of batches built here alone. (The steps
    themselves run on one thread, ``threads=1``: a two-thread step stalls beside busy processes.)"""
    from auhm.train import batches

    forked = []
    helper = batches._Helper.__init__
    monkeypatch.setattr(batches._Helper, "__init__", lambda self, dataset: forked.append(1) or helper(self, dataset))
    corpus = make_corpus(tmp_path / "c", frames=8)
    losses = {}
    for threads in (1, 2):
        torch_threads(threads)
        forked.clear()
        losses[threads] = train(small(corpus, tmp_path / f"threads{threads}", method="scratch", batch_size=4, fold=1, max_steps=3, threads=1)).step_losses
        assert len(forked) == threads - 1
    assert losses[2] == losses[1] and len(losses[1]) == 3


def test_folds_pool_out_of_fold_predictions(corpus, tmp_path):
    out = tmp_path / "kfold"
    result = run_training(small(corpus, out, method="scratch", folds=3, max_steps=2))
    assert [f.val_split for f in result.folds] == ["part1", "part2", "part3"]
    pred = pd.read_parquet(out / "oof_predictions.parquet")
    labels = pd.read_parquet(corpus / "labels.parquet")
    assert len(pred) == len(labels) and not pred.duplicated(["video", "frame"]).any()
    assert pred.columns.tolist() == prediction_schema(AUS).names
    assert (pred[["AU01", "AU04", "AU12", "AU25"]].to_numpy() >= 0).all()
    assert (pred["x1"] > pred["x0"]).all()
    # box of the crop square in frame pixels: crop = 0.5·frame − (20 + s, 10)
    row = pred[pred.video.str.contains("SN001")].iloc[0]
    assert row.x0 == pytest.approx((-0.5 + 20) / 0.5) and row.x1 == pytest.approx((SIZE - 0.5 + 20) / 0.5)
    for k in (1, 2, 3):
        assert (out / f"fold{k}" / "last.pt").exists()
    assert set(result.scores.columns) >= {"AU01", "Avg."} and "ICC" in result.scores.index
    # `auhm score RUN/oof_predictions.parquet --labels DATA/labels.parquet` gives the same table
    from auhm.metrics.report import ScoreConfig, score

    report = score(ScoreConfig(out / "oof_predictions.parquet", corpus / "labels.parquet"))
    assert report.join.rows_matched == len(labels)
    pd.testing.assert_frame_equal(report.scores, result.scores, rtol=1e-5)


def test_ddp_two_processes_gloo(corpus, tmp_path):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with socket.socket() as sock:  # a free port (torchrun's --master_port 0 is not reliable)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1", "--master_port", str(port), "-m", "auhm", "train", str(corpus),
           "--out", str(out), "--method", "scratch", "--preset", "small", "--batch-size", "4", "--epochs", "1", "--max-steps", "3",
           "--workers", "0", "--device", "cpu", "--precision", "fp32", "--quiet"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        _, stderr = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)  # the workers too, not only the launcher
        raise
    assert proc.returncode == 0, stderr[-3000:]
    hist = pd.read_csv(out / "history.csv")
    assert hist["step"].iloc[-1] == 3 and (out / "last.pt").exists()
    # 80 training frames split over two ranks of 4-image batches: 10 steps per epoch
    assert hist["epoch"].iloc[-1] == pytest.approx(0.3)
    assert stderr.count("best epoch") == 1  # only rank 0 reports and writes


def test_ddp_ranks_share_validation_read_out_and_out_of_fold_prediction_and_score_as_one_process(tmp_path):
    """Two gloo ranks: each predicts half of the read-out, validation and out-of-fold crops (none
    waits through the other's work, none repeats it), and the scores are those one process
    computes from the checkpoints they wrote."""
    from helpers import logged_training, spawn_ranks

    from auhm.models import load_checkpoint
    from auhm.train.augment import ShardView
    from auhm.train.evaluate import predict, validation_metrics
    from auhm.train.prepared import load_prepared, split_corpus
    from auhm.train.readout import fit_readout, training_sample

    corpus = make_corpus(tmp_path / "c", frames=8)  # per fold: 16 training crops (the read-out's), 8 held out
    out = tmp_path / "ddp"
    spawn_ranks(2, logged_training, small(corpus, out, method="scratch", folds=3, max_steps=2, batch_size=4), tmp_path)
    counts = [[int(n) for n in (tmp_path / f"rank{r}.log").read_text().split()] for r in (0, 1)]
    assert counts[0] == counts[1] == [8, 4] * 3 + [4] * 3  # per fold: read-out, validation; then the out-of-fold pass

    c = load_prepared(corpus)
    oof = pd.read_parquet(out / "oof_predictions.parquet").set_index(["video", "frame"])
    cpu = torch.device("cpu")
    for k in (1, 2, 3):
        model, info = load_checkpoint(out / f"fold{k}" / "last.pt")
        split = split_corpus(c.manifest, c.shards, k, 3)
        saved_scale = model.intensity_scale.clone()
        fit_readout(model, ShardView(c.shards, training_sample(split.train), model.input_size), c.shards.labels[training_sample(split.train)],
                    4, cpu, "fp32", workers=0)
        torch.testing.assert_close(model.intensity_scale, saved_scale, rtol=1e-5, atol=1e-6)
        view = ShardView(c.shards, split.val, model.input_size)
        alone = validation_metrics(model, view, c.shards.labels[split.val], list(AUS), "au", 4, cpu, "fp32", workers=0)
        row = pd.read_csv(out / f"fold{k}" / "history.csv").iloc[-1]
        for key in ("val_icc", "val_mse", "val_spread"):
            assert row[key] == pytest.approx(alone[key], rel=1e-5, abs=1e-7, nan_ok=True), (k, key)
        expected = predict(model, view, 4, cpu, "fp32", workers=0)
        keys = list(zip(c.shards.video[split.val].astype(str), c.shards.frame[split.val].astype(int)))
        np.testing.assert_allclose(oof.loc[keys, [au_name(a) for a in AUS]].to_numpy(), expected, rtol=1e-5, atol=1e-6)


# ── CLI ─────────────────────────────────────────────────────────────────────────────────────
def test_cli_train_and_evaluate(corpus, tmp_path):
    from typer.testing import CliRunner

    from auhm.cli import app

    runner = CliRunner()
    out = tmp_path / "run"
    r = runner.invoke(app, ["train", str(corpus), "--out", str(out), "--method", "scratch", "--preset", "small", "--batch-size", "4",
                            "--epochs", "1", "--max-steps", "2", "--workers", "0", "--device", "cpu", "--quiet"])
    assert r.exit_code == 0, r.output
    preds = tmp_path / "preds.parquet"
    r = runner.invoke(app, ["evaluate", str(out / "best.pt"), str(corpus), "--out", str(preds), "--quiet", "--device", "cpu", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    df = pd.read_parquet(preds)
    from auhm.models import read_checkpoint_info

    held = read_checkpoint_info(out / "best.pt")["val_subjects"]
    assert len(df) == 40 and set(df.video.str.extract(r"(SN\d+)")[0]) == set(held)
    assert df.columns.tolist() == prediction_schema(AUS).names
    from auhm.io import file_sha256, read_metadata

    meta = read_metadata(preds)  # the checkpoint named as annotate names it
    assert meta["checkpoint"] == file_sha256(out / "best.pt") and meta["checkpoint_path"] == str(out / "best.pt")

    # --split all: every frame of every split; the held-out rows as above; the scores printed are
    # those `auhm score` gives the written table against the corpus's labels
    from auhm.metrics.report import ScoreConfig, score
    from auhm.train.config import EvaluateConfig
    from auhm.train.evaluate import evaluate

    every = tmp_path / "all.parquet"
    r = runner.invoke(app, ["evaluate", str(out / "best.pt"), str(corpus), "--split", "all", "--out", str(every), "--quiet", "--device", "cpu", "--precision", "fp32"])
    assert r.exit_code == 0, r.output
    both = pd.read_parquet(every).sort_values(["video", "frame"], ignore_index=True)
    labels = pd.read_parquet(corpus / "labels.parquet").sort_values(["video", "frame"], ignore_index=True)
    pd.testing.assert_frame_equal(both[["video", "frame"]], labels[["video", "frame"]], check_dtype=False)
    pd.testing.assert_frame_equal(both[both.video.isin(df.video)].reset_index(drop=True), df.sort_values(["video", "frame"], ignore_index=True))
    result = evaluate(EvaluateConfig(out / "best.pt", corpus, split="all", device="cpu", precision="fp32", workers=0, quiet=True))
    report = score(ScoreConfig(every, corpus / "labels.parquet"))
    assert report.join.rows_matched == len(labels) == 120
    pd.testing.assert_frame_equal(report.scores, result.scores, rtol=1e-5)
    r = runner.invoke(app, ["evaluate", str(out / "best.pt"), str(corpus), "--split", "nope"])
    assert r.exit_code == 2 and "nope" in r.output
    r = runner.invoke(app, ["train", str(tmp_path / "missing"), "--out", str(tmp_path / "r2"), "--method", "scratch"])
    assert r.exit_code == 2 and "manifest" in r.output


# ── runs that learn nothing ─────────────────────────────────────────────────────────────────
@pytest.mark.parametrize("kw", [dict(method="scratch"), dict(task="landmarks")], ids=["au", "landmarks"])
def test_a_run_that_cannot_learn_says_so_in_its_history_checkpoint_and_evaluate(corpus, tmp_path, kw):
    from typer.testing import CliRunner

    from auhm.cli import app
    from auhm.models.checkpoint import learning_warning, read_checkpoint_info

    out = tmp_path / "dead"
    result = train(small(corpus, out, epochs=1, lr=0.0, **kw))  # learning rate 0: the weights never move
    assert result.warning and "did not learn" in result.warning
    assert pd.read_csv(out / "history.csv")["warning"].iloc[-1] == result.warning
    assert learning_warning(read_checkpoint_info(out / "best.pt")) == result.warning
    r = CliRunner().invoke(app, ["evaluate", str(out / "best.pt"), str(corpus), "--quiet", "--device", "cpu"])
    assert r.exit_code == 0 and "did not learn" in r.output


def test_the_no_learning_rules_on_recorded_metrics():
    from auhm.models.checkpoint import learning_warning, metrics_warning

    assert metrics_warning("au", {"val_icc": 0.42, "val_spread": 0.8}) is None
    assert "ICC" in metrics_warning("au", {"val_icc": float("nan"), "val_spread": 0.8})
    assert "nearly constant" in metrics_warning("au", {"val_icc": 0.2, "val_spread": 0.02})
    assert metrics_warning("landmarks", {"val_nme": 0.05, "val_nme_mean_shape": 0.12}) is None
    assert "average face" in metrics_warning("landmarks", {"val_nme": 0.115, "val_nme_mean_shape": 0.12})
    # checkpoints written before the verdict was recorded are judged on their metrics alone
    assert "did not learn" in learning_warning({"task": "landmarks", "metrics": {"val_nme": 0.84}})
    assert learning_warning({"task": "au", "metrics": {"val_icc": 0.35}}) is None
    assert learning_warning({"task": "au", "learning_warning": None, "metrics": {"val_icc": 0.0}}) is None


def test_landmark_validation_and_evaluate_decode_each_held_out_crop_once(corpus, tmp_path, monkeypatch):
    """The truth comes from the shards' table (no decode): each held-out crop is decoded once, for
    the network (the presence threshold's own crops left out)."""
    from auhm.data.shards import ShardDataset
    from auhm.face.crop import CropConfig
    from auhm.models import build_model, save_checkpoint
    from auhm.train import evaluate
    from auhm.train.augment import ShardView
    from auhm.train.config import EvaluateConfig
    from auhm.train.prepared import load_prepared, split_corpus

    decoded = []
    image = ShardDataset.image
    monkeypatch.setattr(ShardDataset, "image", lambda self, i, reduce=1: decoded.append(i) or image(self, i, reduce))
    monkeypatch.setattr(evaluate, "presence_threshold", lambda *args, **kwargs: 0.5)
    c = load_prepared(corpus)
    held = split_corpus(c.manifest, c.shards, seed=0).val
    model = build_model("landmarks", preset="small")
    metrics = evaluate.validation_metrics(model, ShardView(c.shards, held, model.input_size), c.shards.labels[held], [], "landmarks", 8,
                                          torch_cpu(), "fp32", c.shards.landmarks[held].mean(axis=0), workers=0)
    assert np.isfinite(metrics["val_nme"]) and sorted(decoded) == sorted(held)
    decoded.clear()
    save_checkpoint(tmp_path / "lm.pt", model, {"task": "landmarks", "crop": CropConfig(SIZE).to_dict()})
    evaluate.evaluate(EvaluateConfig(tmp_path / "lm.pt", corpus, split="part1", device="cpu", precision="fp32", workers=0, quiet=True))
    assert sorted(decoded) == sorted(np.flatnonzero(c.shards.split == "part1"))


def test_validation_and_the_read_out_use_the_runs_workers_setting(corpus, tmp_path, monkeypatch):
    """Not a hard-coded 0: beside a GPU the default (None) gives the prediction passes worker processes too."""
    from auhm.train import evaluate

    asked = []
    loader = evaluate.batch_loader
    monkeypatch.setattr(evaluate, "batch_loader", lambda dataset, device, workers, **kw: asked.append(workers) or loader(dataset, device, workers, **kw))
    train(small(corpus, tmp_path / "run", method="scratch", max_steps=1, workers=None))
    assert asked == [None, None]  # the read-out's pass and validation's


def test_val_every_validates_inside_the_epoch(corpus, tmp_path):
    out = tmp_path / "val_every"
    result = train(small(corpus, out, method="scratch", epochs=1, val_every=3))  # 80 training frames / 8: 10 steps
    assert result.history["step"].tolist() == [3, 6, 9, 10]
    assert result.history["epoch"].tolist() == pytest.approx([0.3, 0.6, 0.9, 1.0])
    assert pd.read_csv(out / "history.csv")["step"].tolist() == [3, 6, 9, 10]


def test_training_fits_the_read_out_scale_on_training_crops_and_evaluate_uses_it(corpus, tmp_path):
    from auhm.models import load_checkpoint
    from auhm.train.augment import ShardView
    from auhm.train.prepared import load_prepared, split_corpus
    from auhm.train.evaluate import predict
    from auhm.train.readout import fit_intensity_scale

    out = tmp_path / "readout"
    train(small(corpus, out, method="scratch", epochs=1))
    model, info = load_checkpoint(out / "last.pt")
    c = load_prepared(corpus)
    sp = split_corpus(c.manifest, c.shards, seed=0)
    train_view = ShardView(c.shards, sp.train, model.input_size)
    raw = predict(model, train_view, 8, torch_cpu(), "fp32", scaled=False)
    # the factors stored are those of the final weights on the (unaugmented) training crops
    np.testing.assert_allclose(model.intensity_scale.numpy(), fit_intensity_scale(raw, c.shards.labels[sp.train]), rtol=1e-4)
    assert not np.allclose(model.intensity_scale.numpy(), 1.0)
    val_view = ShardView(c.shards, sp.val, model.input_size)
    scaled = predict(model, val_view, 8, torch_cpu(), "fp32")
    unscaled = predict(model, val_view, 8, torch_cpu(), "fp32", scaled=False)
    np.testing.assert_allclose(scaled, np.clip(unscaled * model.intensity_scale.numpy(), 0, 5), rtol=1e-5, atol=1e-6)


def torch_cpu():
    import torch

    return torch.device("cpu")
