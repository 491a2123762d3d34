"""Agreement and error measures for AU intensities: ICC(3,1), MSE, MAE, Pearson r, F1."""

from auhm.metrics.bootstrap import bootstrap_scores
from auhm.metrics.icc import ICC_KINDS, icc, icc3_1
from auhm.metrics.scores import (
    METRICS,
    JoinReport,
    ScoreConfig,
    ScoreReport,
    au_scores,
    join_predictions,
    match_videos,
    pair_sums,
    score,
    scores_from_sums,
    subject_of,
)

__all__ = [
    "ICC_KINDS",
    "METRICS",
    "JoinReport",
    "ScoreConfig",
    "ScoreReport",
    "au_scores",
    "bootstrap_scores",
    "icc",
    "icc3_1",
    "join_predictions",
    "match_videos",
    "pair_sums",
    "score",
    "scores_from_sums",
    "subject_of",
]
