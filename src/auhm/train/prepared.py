"""A prepared corpus (``auhm prepare``'s output) in memory and its subject-independent splits (never by frame)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from auhm.data.shards import ShardDataset, list_shards
from auhm.errors import UsageError


def read_manifest(data: Path) -> dict:
    path = Path(data) / "manifest.json"
    if not path.exists():
        raise UsageError(f"{data}: not a prepared corpus (no manifest.json; run auhm prepare)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise UsageError(f"{path}: unreadable manifest ({e})") from None


@dataclass
class PreparedCorpus:
    """A prepared corpus in memory: manifest, frames, and each frame's frame→crop affine."""

    path: Path
    manifest: dict
    shards: ShardDataset
    affines: np.ndarray  # (n, 2, 3), row-aligned with shards

    @property
    def crop_size(self) -> int:
        return int((self.manifest.get("crop") or {}).get("size") or self.shards.image(0).shape[0])


def load_prepared(data: Path, aus=None, trainable: bool = False) -> PreparedCorpus:
    """All frames of a prepared corpus (every split), with their crop affines for prediction boxes.
    ``trainable``: only the AUs with a location in the paper's Table 1 (a heatmap target needs one);
    the others (UNBC's AU7 and AU43, say) are named once and left out."""
    manifest = read_manifest(data)
    if trainable and aus is None:
        from auhm.console import console
        from auhm.targets import AU_TABLE, parse_au

        listed = [parse_au(a) for a in manifest.get("aus") or []]
        aus = [a for a in listed if a in AU_TABLE]
        if listed and not aus:
            raise UsageError(f"{data}: none of its AUs ({', '.join(map(str, listed))}) has a location in the paper's Table 1: nothing to train")
        if len(aus) < len(listed):
            left = ", ".join(f"AU{a}" for a in listed if a not in AU_TABLE)
            console.print(f"train: {left} have no location in the paper's Table 1 (no heatmap target) and are not trained",
                          markup=False, highlight=False, soft_wrap=True)
    paths = list_shards(data)
    if not paths:
        raise UsageError(f"{data}: no shards in {Path(data) / 'shards'}")
    try:
        shards = ShardDataset(paths, aus if aus is not None else manifest.get("aus"))
    except (ValueError, OSError) as e:
        raise UsageError(f"{data}: {e}") from None
    return PreparedCorpus(Path(data), manifest, shards, shards.affines)


@dataclass
class Split:
    """Indices (into the ShardDataset) of the training and the held-out frames."""

    train: np.ndarray
    val: np.ndarray
    name: str  # the held-out split's name, or "subjects" when held out by seed
    val_subjects: list[str]


def subject_groups(subjects, k: int, seed: int) -> list[list[str]]:
    """k disjoint groups of subjects, the same for the same subjects and seed."""
    names = sorted(set(subjects))
    if len(names) < k:
        raise UsageError(f"{len(names)} subjects cannot make {k} subject-independent folds")
    order = np.random.default_rng(seed).permutation(len(names))
    return [sorted(names[i] for i in part) for part in np.array_split(order, k)]


def split_corpus(manifest: dict, shards: ShardDataset, fold: int | None = None, n_folds: int | None = None, seed: int = 0, holdout_fraction: float = 0.2) -> Split:
    """Hold out whole subjects, never frames: a manifest fold, the dev split, or subjects by seed."""
    folds = manifest.get("folds")
    splits = manifest.get("splits") or {}
    if fold is not None:
        if folds:
            if n_folds not in (None, len(folds)):
                raise UsageError(f"the corpus defines {len(folds)} folds, not {n_folds}")
            if not 1 <= fold <= len(folds):
                raise UsageError(f"--fold {fold}: the corpus has folds 1..{len(folds)} ({', '.join(folds)})")
            held = folds[fold - 1]
            val = shards.split == held
            train = np.isin(shards.split, [f for f in folds if f != held])
            return _split(train, val, held, shards)
        if n_folds is None:
            raise UsageError("--fold needs a corpus with folds in its manifest, or --folds K")
        if not 1 <= fold <= n_folds:
            raise UsageError(f"--fold {fold}: choose 1..{n_folds}")
        held_subjects = subject_groups(shards.subject, n_folds, seed)[fold - 1]
        val = np.isin(shards.subject, held_subjects)
        return _split(~val, val, f"subjects-fold{fold}", shards)
    if "train" in splits and "dev" in splits:
        return _split(shards.split == "train", shards.split == "dev", "dev", shards)
    names = sorted(set(shards.subject))
    n_val = max(1, int(round(holdout_fraction * len(names))))
    if len(names) < 2:
        raise UsageError("a subject-independent split needs at least 2 subjects")
    held_subjects = sorted(np.asarray(names)[np.random.default_rng(seed).permutation(len(names))[:n_val]])
    val = np.isin(shards.subject, held_subjects)
    return _split(~val, val, "subjects", shards)


def _split(train: np.ndarray, val: np.ndarray, name: str, shards: ShardDataset) -> Split:
    if not train.any() or not val.any():
        raise UsageError(f"split {name!r} leaves {int(train.sum())} training and {int(val.sum())} held-out frames")
    return Split(np.flatnonzero(train), np.flatnonzero(val), name, sorted(set(shards.subject[val])))
