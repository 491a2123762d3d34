"""Label columns scored beside the AUs (UNBC's PSPI pain score): joined on the videos the AU join
matched, and derived from a prediction's AUs where the predictions have no such column."""

from __future__ import annotations

import numpy as np
import pandas as pd

from auhm.metrics.sums import pair_sums, scores_from_sums, METRICS

PSPI = "PSPI"


def pspi_from_aus(table: pd.DataFrame) -> pd.Series | None:
    """Prkachin and Solomon's pain intensity, AU4 + max(AU6, AU7) + max(AU9, AU10) + AU43, from a
    table's AU columns (a missing one of a pair: the other; a missing AU43: 0); None without AU4,
    AU6 or AU7, and AU9 or AU10."""
    def col(name):
        return table[name].astype("float64") if name in table else None

    au4, au43 = col("AU04"), col("AU43")
    pairs = [[c for c in (col(a), col(b)) if c is not None] for a, b in (("AU06", "AU07"), ("AU09", "AU10"))]
    if au4 is None or not all(pairs):
        return None
    total = au4 + sum(pd.concat(p, axis=1).max(axis=1, skipna=False) for p in pairs)
    return total + (au43 if au43 is not None else 0.0)


def extra_scores(predictions: pd.DataFrame, labels: pd.DataFrame, matched: dict[str, str], columns, threshold: float) -> tuple[pd.DataFrame, list[str]]:
    """Scores (rows ``METRICS``) of each non-AU label column in ``columns`` the predictions hold or
    can derive, on the (video, frame) pairs of the videos ``matched`` (label video → prediction video),
    and a note per column derived or left out."""
    out, notes = {}, []
    if "face" in predictions:
        predictions = predictions[predictions["face"].fillna(0) == 0]
    for column in columns:
        values = predictions[column] if column in predictions else None
        if values is None and column == PSPI:
            values = pspi_from_aus(predictions)
            if values is not None:
                notes.append("PSPI of the predictions: AU4 + max(AU6, AU7) + max(AU9, AU10)"
                             + (" + AU43" if "AU43" in predictions else " (no AU43 predicted: counted 0)"))
        if values is None:
            notes.append(f"{column} not scored: the predictions have neither it nor the AUs it is made of")
            continue
        key = {pv: lv for lv, pv in matched.items()}
        pred = pd.DataFrame({"video": predictions["video"].astype(str).map(key), "frame": predictions["frame"].astype(np.int64),
                             "p": values.to_numpy(np.float64)}).dropna(subset=["video"]).drop_duplicates(["video", "frame"])
        lab = pd.DataFrame({"video": labels["video"].astype(str), "frame": labels["frame"].astype(np.int64),
                            "t": pd.to_numeric(labels[column], errors="coerce").to_numpy(np.float64)}).drop_duplicates(["video", "frame"])
        both = lab.merge(pred, on=["video", "frame"])
        metrics = scores_from_sums(pair_sums(both["t"].to_numpy(), both["p"].to_numpy(), threshold))
        out[column] = [float(metrics[m][0]) for m in METRICS]
    return pd.DataFrame(out, index=list(METRICS)), notes
