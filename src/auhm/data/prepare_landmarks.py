"""``auhm prepare landmarks``: a landmark corpus as distributed → the shards ``auhm train --task landmarks`` reads.

Faces are cut with the corpus's own landmarks (no backend runs) and written in chunks of
``SHARD_FACES``, one shard per chunk, atomically: an interrupted run resumes at the first missing
chunk. Rows carry no AU columns; ``video`` is the face's key, ``subject`` its group (see
``landmark_formats.photo_group``) and ``split`` train or dev, drawn per group at random (seeded).
A face whose annotation or image cannot be read is reported and left out; the rest are prepared.
"""

from __future__ import annotations

import hashlib
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from auhm import checks
from auhm.console import console, progress
from auhm.data.landmark_formats import Face, scan_landmark_corpus
from auhm.data.prepare import PrepareReport
from auhm.data.shards import ShardRows, list_shards
from auhm.data.splits import random_holdout
from auhm.errors import InputFailure, UsageError, failure_reason
from auhm.face import CropConfig, crop_face, warp_points
from auhm.io import check_writable, read_metadata, write_json_atomic

SHARD_FACES = 1000
LANDMARK_SOURCE = "annotation"  # the manifest's landmark_backend: the corpus's own points


@dataclass(frozen=True)
class LandmarkPrepareConfig:
    crop: CropConfig = field(default_factory=CropConfig)
    val_fraction: float = 0.1  # share of groups held out as the dev split
    seed: int = 0  # of the dev split

    def check(self) -> None:
        """Everything that can be checked before any work, as a UsageError naming the option."""
        if not 0 <= self.val_fraction < 1:
            raise UsageError(f"--val-fraction must be in [0, 1) (got {self.val_fraction})")
        checks.seed(self.seed)


def read_image(path: Path) -> np.ndarray | None:
    """RGB pixels as stored: EXIF orientation is ignored, as the annotation tools ignored it."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    return None if img is None else cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


def prepare_landmarks(fmt: str, root: str | os.PathLike, out: str | os.PathLike, config: LandmarkPrepareConfig = LandmarkPrepareConfig(),
                      quiet: bool = False) -> PrepareReport:
    """Prepare every face of a landmark corpus; per-file failures are collected in the report, never raised."""
    config.check()
    check_writable(out, directory=True)
    corpus = scan_landmark_corpus(fmt, root)
    out = Path(out)
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    split_of = random_holdout([f.group for f in corpus.faces], config.val_fraction, config.seed)
    chunks = [corpus.faces[i:i + SHARD_FACES] for i in range(0, len(corpus.faces), SHARD_FACES)]
    names = [f"{fmt}-{k:05d}.parquet" for k in range(len(chunks))]
    stale = sorted({p.name for p in list_shards(out)} - set(names))
    if stale:
        raise UsageError(f"{shard_dir} holds shards of another corpus ({stale[0]} …); use another --out or delete it")
    report = PrepareReport(out=out, failures=list(corpus.failures))
    shard_stats: dict[str, dict] = {}
    todo = []
    for name, chunk in zip(names, chunks):
        path = shard_dir / name
        signature = _signature(fmt, chunk, split_of, config.crop)
        if path.exists():
            meta = read_metadata(path)
            if meta.get("chunk") != signature:
                raise UsageError(f"{path}: prepared from other faces or with another crop or split; use another --out or delete {shard_dir}")
            report.resumed.append(name)
            shard_stats[name] = meta["stats"]
            report.failures += [InputFailure(*f) for f in meta["stats"]["failures"]]
        else:
            todo.append((name, chunk, signature))
    if report.resumed:
        console.print(f"resuming: {len(report.resumed)} of {len(chunks)} shards already prepared, skipped", highlight=False)
    with progress(quiet) as bar:
        task = bar.add_task("prepare", total=sum(len(c) for _, c, _ in todo), unit="faces")
        for name, chunk, signature in todo:
            stats = _prepare_chunk(chunk, split_of, config.crop, shard_dir / name,
                                   {"kind": "landmarks", "format": fmt, "crop": config.crop.to_dict(), "landmark_backend": LANDMARK_SOURCE,
                                    "chunk": signature}, lambda: bar.advance(task))
            shard_stats[name] = stats
            report.written.append(name)
            report.frames += stats["prepared"]
            report.failures += [InputFailure(*f) for f in stats["failures"]]
    write_json_atomic(_manifest(fmt, corpus.root, config, split_of, shard_stats, report), out / "manifest.json")
    return report


def _signature(fmt: str, chunk: list[Face], split_of: dict[str, str], crop: CropConfig) -> str:
    """What a chunk's shard is made from: its faces, their splits and the crop."""
    h = hashlib.sha1(f"{fmt}|{crop.to_dict()}".encode())
    for face in chunk:
        h.update(f"\0{face.key}\0{split_of[face.group]}".encode())
    return h.hexdigest()


def _prepare_chunk(chunk: list[Face], split_of: dict[str, str], crop: CropConfig, path: Path, metadata: dict, advance) -> dict:
    rows = ShardRows(video="", subject="", split="", aus=())
    failures: list[tuple[str, str]] = []
    for face in chunk:
        try:
            try:
                points = face.load()
            except (ValueError, OSError) as e:
                failures.append((face.source, failure_reason(e, Path(face.source))))
                continue
            image = read_image(face.image)
            if image is None:
                failures.append((str(face.image), "missing or unreadable image"))
                continue
            pixels, affine = crop_face(image, points, crop)
            rows.add(0, pixels, warp_points(points, affine), affine, np.zeros(0, np.float32),
                     video=face.key, subject=face.group, split=split_of[face.group])
        finally:
            advance()
    splits = Counter(rows.splits)
    stats = {"faces": len(chunk), "prepared": len(rows), "train": splits["train"], "dev": splits["dev"], "failures": failures}
    rows.write(path, metadata={**metadata, "stats": stats})
    return stats


def _manifest(fmt: str, root: Path, config: LandmarkPrepareConfig, split_of: dict[str, str], shard_stats: dict[str, dict], report: PrepareReport) -> dict:
    splits: dict[str, list[str]] = {}
    for group, split in sorted(split_of.items()):
        splits.setdefault(split, []).append(group)
    prepared = sum(s["prepared"] for s in shard_stats.values())
    return {
        "kind": "landmarks",
        "format": fmt,
        "root": str(root.resolve()),
        "aus": [],
        "au_columns": [],
        "crop": config.crop.to_dict(),
        "landmark_backend": LANDMARK_SOURCE,
        "every": 1,
        "val_fraction": config.val_fraction,
        "seed": config.seed,
        "splits": dict(sorted(splits.items())),
        "folds": None,
        "faces": {"annotated": sum(s["faces"] for s in shard_stats.values()), "prepared": prepared, "failed": len(report.failures)},
        "shards": {name: {k: v for k, v in st.items() if k != "failures"} for name, st in sorted(shard_stats.items())},
        "failures": [str(f) for f in report.failures],
        "warnings": [],
    }
