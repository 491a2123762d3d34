"""FEAFA+: image sequences whose every frame has a label file of 24 continuous AU values (0–1).

Layout followed (assumed from the release description; the archive itself could not be checked
here): a folder per sequence (FEAFA's posed ones and the re-labelled DISFA ones, in any folder
tree under the root), holding its frames (``00001.png`` …) and beside each a label file of the
same name, ``.auw`` or ``.txt``: the 24 values, separated by spaces, commas or line breaks. A
first line of names (``AU1 AU2L …``) names the values; without one they are in the order of
``CHANNELS``. FEAFA+ codes unilateral AUs per side (``AU2L``, ``AU2R``); auhm's tables have one
column per AU, so a side pair becomes the larger of its two values. Values stay 0–1 unless the
reader is asked to ``scale_to_five`` (``auhm prepare feafa-plus ROOT --scale-to-5``). Each
sequence folder is its own subject; subjects go round robin over three folds.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from auhm.data.corpora import CorpusSpec, register_corpus
from auhm.data.readers import Corpus, Session, numbered_images, relative_key, truth_sidecar, walk_files, labels_from_rows
from auhm.data.splits import THREE_FOLDS, three_folds
from auhm.errors import InputFailure

# The 24 values of a label file without names, in file order (assumed; a names line overrides it).
CHANNELS = ("AU1", "AU2L", "AU2R", "AU4", "AU5L", "AU5R", "AU6L", "AU6R", "AU9", "AU10", "AU12L", "AU12R",
            "AU14L", "AU14R", "AU15L", "AU15R", "AU16", "AU17", "AU18", "AU20L", "AU20R", "AU22", "AU25", "AU26")
_CHANNEL = re.compile(r"AU(\d+)([LR])?", re.IGNORECASE)
AUS = tuple(sorted({int(_CHANNEL.fullmatch(c).group(1)) for c in CHANNELS}))
LABEL_SUFFIXES = (".auw", ".txt")
MAX_VALUE = 1.0  # FEAFA+'s scale; auhm's is 0–5


def read_label_file(path: Path) -> dict[int, float]:
    """{AU: value 0–1} of one frame's label file (side pairs: the larger). ValueError says what is wrong."""
    text = Path(path).read_text(errors="replace").strip()
    lines = text.splitlines()
    names = list(CHANNELS)
    if lines and re.search(r"[A-Za-z]", lines[0]):
        names = [n for n in re.split(r"[,;\s]+", lines[0].strip()) if n]
        text = "\n".join(lines[1:])
    fields = [f for f in re.split(r"[,;\s]+", text) if f]
    if len(fields) != len(names):
        raise ValueError(f"{len(fields)} values, not {len(names)}")
    try:
        values = [float(f) for f in fields]
    except ValueError:
        raise ValueError(f"not numbers: {' '.join(fields)[:60]!r}") from None
    out: dict[int, float] = {}
    for name, v in zip(names, values):
        m = _CHANNEL.fullmatch(name)
        if m is None:
            continue  # an action descriptor, not an AU
        if not 0 <= v <= MAX_VALUE:
            raise ValueError(f"{name} = {v} is outside 0–1")
        au = int(m.group(1))
        out[au] = max(out.get(au, 0.0), v)
    return out


def read(root: Path, scale_to_five: bool = False) -> Corpus:
    corpus = Corpus(kind="feafa-plus", root=root, aus=AUS, sessions=[])
    by_folder: dict[Path, dict[str, Path]] = {}
    for p in walk_files(root):
        if p.suffix.lower() in LABEL_SUFFIXES:
            by_folder.setdefault(p.parent, {})[p.stem] = p
    scale = 5.0 / MAX_VALUE if scale_to_five else 1.0
    for folder, label_files in sorted(by_folder.items()):
        frames = numbered_images(folder)
        images = {img.stem: number for number, img in frames}
        if not frames:
            continue  # a folder of text files other than frame labels
        rows = {}
        for stem, f in sorted(label_files.items()):
            if stem not in images:
                continue
            try:
                values = read_label_file(f)
            except (OSError, ValueError) as e:
                corpus.failures.append(InputFailure(str(f), f"{e}; frame {images[stem]} is unlabelled"))
                continue
            rows[images[stem]] = [values.get(a, np.nan) * scale for a in AUS]
        if not rows:
            corpus.failures.append(InputFailure(str(folder), "no readable frame label file"))
            continue
        labels = labels_from_rows(rows, AUS)
        key = relative_key(root, folder)
        corpus.sessions.append(Session(key=key, path=folder, subject=key, task="", kind="feafa-plus", labels=labels,
                                       frame_files=frames, truth=truth_sidecar(root, folder.name)))
    return corpus


register_corpus(CorpusSpec(
    "feafa-plus", AUS, read, three_folds, folds=THREE_FOLDS,
    expected="sequence folders of frames (00001.png) each with a label file beside it (00001.auw: 24 values)",
))
