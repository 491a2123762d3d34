"""``auhm export``: a prediction table (Parquet file or folder) written for other tools: OpenFace 2.2's
CSVs, one per video (``openface``), or one plain CSV of the same rows and columns (``csv``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from auhm.errors import InputFailure, UsageError
from auhm.io import atomic_path, check_writable, read_predictions

FORMATS = ("openface", "csv")


@dataclass
class ExportResult:
    files: list[Path]
    videos: int
    rows: int
    failures: list[InputFailure] = field(default_factory=list)  # prediction files that could not be read


def export(predictions: Path, to: str, out: Path) -> ExportResult:
    """Write ``predictions`` as ``to`` into ``out`` (a folder; for ``csv`` a ``.csv`` path or a folder)."""
    if to not in FORMATS:
        raise UsageError(f"--to {to}: choose one of {', '.join(FORMATS)}")
    if not Path(predictions).exists():
        raise UsageError(f"{predictions}: no such file or directory")
    single = to == "csv" and Path(out).suffix.lower() == ".csv"
    check_writable(out, directory=not single)
    failures: list[InputFailure] = []
    try:
        table = read_predictions(predictions, failures)
    except (OSError, ValueError, KeyError, pa.ArrowException) as e:
        raise UsageError(f"{predictions}: cannot read predictions ({e})") from None
    if to == "openface":
        from auhm.interop.openface import write_openface

        files = write_openface(table, Path(out))
    else:
        path = Path(out) if single else Path(out) / f"{Path(predictions).stem}.csv"
        with atomic_path(path) as tmp:
            table.to_csv(tmp, index=False)
        files = [path]
    return ExportResult(files, int(table["video"].nunique()), len(table), failures)
