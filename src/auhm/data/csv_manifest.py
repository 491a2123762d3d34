"""A generic manifest CSV for one's own recordings: video, frame (0-based), AUxx[, subject, split].

``video`` paths are relative to the CSV's folder or absolute, and the ``video`` value as
written is the session key. Without a ``subject`` column each video is its own subject;
without a ``split`` column subjects are dealt round robin over part1–part3.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.readers import IMAGE_SUFFIXES, Corpus, add_session
from auhm.data.splits import THREE_FOLDS, three_folds
from auhm.errors import InputFailure, UsageError
from auhm.io import au_columns, clean_labels
from auhm.targets import parse_au


def read(manifest: Path) -> Corpus:
    try:
        df = pd.read_csv(manifest, skipinitialspace=True)
    except (OSError, ValueError) as e:
        raise UsageError(f"{manifest}: not a readable manifest CSV ({e})") from None
    df.columns = [str(c).strip() for c in df.columns]
    missing = {"video", "frame"} - set(df.columns)
    cols = au_columns(df.columns)
    if missing or not cols:
        raise UsageError(f"{manifest}: manifest needs columns video, frame and AUxx (missing {sorted(missing) or 'AU columns'})")
    aus = tuple(parse_au(c) for c in cols)
    base = manifest.parent
    corpus = Corpus(kind="csv", root=manifest, aus=aus, sessions=[])
    for key, rows in df.groupby("video", sort=True):
        key = str(key)
        path = Path(key) if Path(key).is_absolute() else base / key
        frames = pd.to_numeric(rows["frame"], errors="coerce")
        if frames.isna().any():
            corpus.failures.append(InputFailure(key, f"non-numeric frame values in {manifest}"))  # named by its key, not its path
            continue
        labels = pd.DataFrame({"frame": frames.astype(np.int64).to_numpy()})
        for c in cols:
            labels[c] = rows[c].to_numpy()
        labels = clean_labels(labels).drop_duplicates("frame", keep="last").sort_values("frame", ignore_index=True)
        subject = str(rows["subject"].iloc[0]) if "subject" in rows else Path(key).stem
        split = str(rows["split"].iloc[0]) if "split" in rows and pd.notna(rows["split"].iloc[0]) else ""
        frame_files = None
        if path.is_dir():
            images = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
            frame_files = list(enumerate(images))
        add_session(corpus, path, labels, "", subject=subject, key=key, split=split, frame_files=frame_files, truth_root=base)
    return corpus


register_corpus(CorpusSpec("csv", (), read, three_folds, folds=THREE_FOLDS, expected="rows of video, frame, AUxx"))
