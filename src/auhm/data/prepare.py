"""``auhm prepare``: a corpus → per-video training shards, ``labels.parquet`` and ``manifest.json``.

One session at a time is decoded in batches, tracked, cropped and written as one shard, so
memory does not grow with the corpus. Shards are written atomically, and an existing shard
is a finished session: an interrupted run resumes where it stopped. A session that fails
(broken video, missing labels, no landmarks) is reported and the others go on.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from rich.text import Text

from auhm import checks
from auhm.console import console, progress
from auhm.data.readers import Corpus, Session, labels_table, load_sessions
from auhm.data.shards import ShardRows, list_shards
from auhm.errors import InputFailure, UsageError, failure_reason
from auhm.face import BackendUnavailable, CropConfig, Tracker, crop_face, warp_points
from auhm.io import check_writable, read_metadata, write_json_atomic, write_parquet_atomic
from auhm.landmarks import backend_name, check_backend, make_backend
from auhm.targets import au_name
from auhm.video import FrameBatch, VideoReader

SEQUENCE_FPS = 25.0  # BP4D's frame rate: timestamps of image sequences


@dataclass(frozen=True)
class PrepareConfig:
    landmarks: str = "truth"  # landmark backend: truth, network, dlib or fan
    landmark_model: Path | None = None  # checkpoint for --landmarks network
    crop: CropConfig = field(default_factory=CropConfig)
    every: int = 1  # keep every k-th frame
    batch_size: int = 32
    device: str = "auto"  # for the fan and network backends: auto, cpu, cuda
    right_camera: bool = False  # DISFA: also the right-camera videos
    scale_to_five: bool = False  # FEAFA+: its 0–1 values scaled to auhm's 0–5

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        checks.at_least(self.every, 1, "--every")
        checks.at_least(self.batch_size, 1, "batch size")
        check_backend(self.landmarks, self.landmark_model)


@dataclass
class PrepareReport:
    out: Path
    written: list[str] = field(default_factory=list)  # session keys prepared by this run
    resumed: list[str] = field(default_factory=list)  # session keys whose shard existed already
    failures: list[InputFailure] = field(default_factory=list)
    warnings: list[InputFailure] = field(default_factory=list)
    frames: int = 0  # crops written by this run
    skipped: Counter = field(default_factory=Counter)  # frames left out by this run, by reason
    mismatches: dict[str, dict] = field(default_factory=dict)  # label vs video length, per session


def shard_name(key: str) -> str:
    """A file name for a session key, readable and unique: ``Videos_LeftCamera__LeftVideoSN001_comp.avi.parquet``.

    Keys that the plain mapping could confuse (odd characters, ``__``, a leading dot) get a
    short hash of the key appended.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", key.replace("/", "__")).lstrip(".")
    if "__" in key or key.replace("/", "__") != safe:
        safe += "-" + hashlib.sha1(key.encode()).hexdigest()[:8]
    return safe + ".parquet"


def prepare_corpus(kind: str, root: str | os.PathLike, out: str | os.PathLike, config: PrepareConfig = PrepareConfig(), quiet: bool = False) -> PrepareReport:
    """Prepare every session of a corpus; failures are collected in the report, never raised."""
    config.check()
    check_writable(out, directory=True)
    config = dataclasses.replace(config, landmarks=backend_name(config.landmarks))  # an alias is recorded by the name now
    corpus = load_sessions(kind, root, right_camera=config.right_camera, scale_to_five=config.scale_to_five)
    out = Path(out)
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    report = PrepareReport(out=out, failures=list(corpus.failures), warnings=list(corpus.warnings))
    for w in corpus.warnings:
        console.print(Text.assemble(("warning", "yellow"), f" {w}"), highlight=False, soft_wrap=True)
    shared_backend = None if config.landmarks == "truth" else _make_backend(config, None)
    done = {p.name for p in list_shards(out)}
    stats: dict[str, dict] = {}
    todo = []
    for s in corpus.sessions:
        name = shard_name(s.key)
        if name in done:
            meta = read_metadata(shard_dir / name)
            made_with = (meta.get("crop"), meta.get("landmark_backend"))
            if (made_with[0], backend_name(made_with[1])) != (config.crop.to_dict(), config.landmarks):
                raise UsageError(
                    f"{shard_dir / name}: prepared with crop {made_with[0]} and --landmarks {made_with[1]}, not "
                    f"{config.crop.to_dict()} and {config.landmarks}; use another --out or delete {shard_dir}"
                )
            report.resumed.append(s.key)
            stats[s.key] = meta.get("stats", {})
        else:
            todo.append(s)
    if report.resumed:
        console.print(f"resuming: {len(report.resumed)} of {len(corpus.sessions)} sessions already prepared, skipped", highlight=False)
    with progress(quiet) as bar:
        total = sum(_expected_frames(s, config.every) for s in todo)  # an estimate, corrected as sessions end
        task = bar.add_task("prepare", total=total, unit="frames")
        for s in todo:
            seen = [0]

            def advance(n: int, seen: list = seen) -> None:
                seen[0] += n
                bar.advance(task, n)

            try:
                if s.unpreparable:
                    raise ValueError(s.unpreparable)
                tracker = Tracker(shared_backend if shared_backend is not None else _make_backend(config, s))
                stats[s.key] = _prepare_session(s, corpus, tracker, config, shard_dir / shard_name(s.key), advance)
            except Exception as e:  # one broken session never stops the others
                report.failures.append(InputFailure(str(s.path), failure_reason(e, s.path)))
                continue
            finally:
                total += seen[0] - _expected_frames(s, config.every)
                bar.update(task, total=total)
            report.written.append(s.key)
            report.frames += stats[s.key]["labelled"]
            report.skipped.update(stats[s.key]["skipped"])
            if "mismatch" in stats[s.key]:
                m = report.mismatches[s.key] = stats[s.key]["mismatch"]
                console.print(Text.assemble(("warning", "yellow"), f" {s.path}: {m['label_frames']} label rows vs {m['video_frames']} video frames; "
                                            "aligned by frame index"), highlight=False, soft_wrap=True)
    for key, st in stats.items():
        if "mismatch" in st:
            report.mismatches[key] = st["mismatch"]
    write_parquet_atomic(labels_table(corpus), out / "labels.parquet")
    write_json_atomic(_manifest(corpus, config, stats, report), out / "manifest.json")
    return report


def _make_backend(config: PrepareConfig, session: Session | None):
    """The landmark backend: one for the whole corpus, or per session for its truth sidecar."""
    try:
        return make_backend(config.landmarks, model=config.landmark_model, truth=session.truth if session else None, device=config.device)
    except (ValueError, FileNotFoundError, BackendUnavailable) as e:  # a checkpoint of no use, a library or weights not installed
        raise UsageError(str(e)) from None


def _expected_frames(s: Session, every: int) -> int:
    n = len(s.frame_files) if s.frame_files is not None else (int(s.labels["frame"].max()) + 1 if len(s.labels) else 0)
    return -(-n // every)


def _frame_batches(s: Session, batch_size: int, every: int) -> Iterator[tuple[FrameBatch, np.ndarray]]:
    """(decoded RGB frames, their label frame numbers): videos through VideoReader, image sequences file by file.

    In an image sequence the batch indices are 0-based positions in the sorted sequence (what
    the landmark tracker and a truth sidecar count), the label frame numbers are the numbers in
    the file names.
    """
    if s.frame_files is None:
        for batch in VideoReader(s.path).batches(batch_size, every):
            yield batch, batch.indices
        return
    if not s.frame_files:
        raise ValueError("image folder holds no frames")
    positions = np.arange(0, len(s.frame_files), every)
    for start in range(0, len(positions), batch_size):
        chunk = positions[start:start + batch_size]
        frames = []
        for p in chunk:
            f = s.frame_files[p][1]
            img = cv2.imread(str(f), cv2.IMREAD_COLOR)
            if img is None:
                raise ValueError(f"unreadable image {f}")
            frames.append(cv2.cvtColor(img, cv2.COLOR_BGR2RGB))
        numbers = np.asarray([s.frame_files[p][0] for p in chunk], np.int64)
        yield FrameBatch(chunk.astype(np.int64), chunk / SEQUENCE_FPS, np.stack(frames)), numbers


def _prepare_session(s: Session, corpus: Corpus, tracker, config: PrepareConfig, shard: Path, advance) -> dict:
    labels = s.label_array(corpus.aus)  # (max labelled frame + 1, n_aus), NaN = unlabelled
    labelled = ~np.isnan(labels).all(axis=1)
    rows = ShardRows(video=s.key, subject=s.subject, split=s.split, aus=corpus.aus)
    skipped: Counter = Counter()
    decoded: list[int] = []
    tracker.start(str(s.path))
    for batch, numbers in _frame_batches(s, config.batch_size, config.every):
        track = tracker.update(batch)
        for i, frame in enumerate(numbers):
            decoded.append(int(frame))
            if frame >= len(labels) or not labelled[frame]:
                skipped["unlabelled"] += 1
            elif not track.success[i]:
                skipped["no_face"] += 1
            else:
                crop, affine = crop_face(batch.frames[i], track.landmarks[i], config.crop)
                rows.add(frame, crop, warp_points(track.landmarks[i], affine), affine, labels[frame])
        advance(len(batch))
    stats = {
        "subject": s.subject,
        "split": s.split,
        "frames": len(decoded),
        "labelled": len(rows),
        "skipped": dict(skipped),
    }
    mismatch = _length_mismatch(s, decoded, config.every)
    if mismatch:
        stats["mismatch"] = mismatch
    rows.write(shard, metadata={"kind": corpus.kind, "crop": config.crop.to_dict(), "landmark_backend": config.landmarks, "stats": stats})
    return stats


def _length_mismatch(s: Session, decoded: list[int], every: int) -> dict | None:
    """Label rows past the decoded frames, or decoded frames past the labels (None when they agree).

    With ``every`` > 1 the video length is known to within ``every`` − 1 frames.
    """
    label_frames = s.labels["frame"].to_numpy(np.int64)
    if s.frame_files is not None:  # image sequence: frame numbers are the file names
        have = {f for f, _ in s.frame_files}
        beyond = int(sum(f not in have for f in label_frames))
        unlabelled = len(have - set(label_frames.tolist()))
        n_video = len(have)
    else:
        n_video = (decoded[-1] + 1) if decoded else 0
        beyond = int((label_frames >= n_video + every - 1).sum())
        unlabelled = max(0, n_video - (int(label_frames.max()) + 1 if len(label_frames) else 0))
    if not beyond and not unlabelled:
        return None
    return {"video_frames": n_video, "label_frames": len(label_frames), "labels_past_video": beyond, "frames_past_labels": unlabelled}


def _manifest(corpus: Corpus, config: PrepareConfig, stats: dict[str, dict], report: PrepareReport) -> dict:
    return {
        "kind": corpus.kind,
        "root": str(corpus.root.resolve()),
        "aus": list(corpus.aus),
        "au_columns": [au_name(a) for a in corpus.aus],
        "crop": config.crop.to_dict(),
        "landmark_backend": config.landmarks,
        "every": config.every,
        "splits": corpus.splits,
        "folds": corpus.folds,
        "videos": {key: {k: v for k, v in stats[key].items() if k != "mismatch"} for key in sorted(stats)},
        "skipped": dict(sum((Counter(st.get("skipped", {})) for st in stats.values()), Counter())),
        "mismatches": {key: st["mismatch"] for key, st in sorted(stats.items()) if "mismatch" in st},
        "failures": [str(f) for f in report.failures],
        "warnings": [str(w) for w in report.warnings],
    }
