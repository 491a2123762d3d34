"""Agreement and error measures for AU intensities: ICC(3,1), MSE, MAE, Pearson r, F1.

``sums`` (every score from per-AU sums), ``join`` (predictions matched to labels frame by frame),
``bootstrap`` (intervals that resample whole videos), ``report`` (``auhm score`` and the tables).
"""

from auhm.metrics.bootstrap import bootstrap_scores
from auhm.metrics.icc import ICC_KINDS, icc, icc3_1
from auhm.metrics.join import JoinReport, join_predictions, match_videos
from auhm.metrics.report import ScoreConfig, ScoreReport, au_table, score
from auhm.metrics.sums import METRICS, au_scores, pair_sums, scores_from_sums

__all__ = [
    "ICC_KINDS",
    "METRICS",
    "JoinReport",
    "ScoreConfig",
    "ScoreReport",
    "au_scores",
    "au_table",
    "bootstrap_scores",
    "icc",
    "icc3_1",
    "join_predictions",
    "match_videos",
    "pair_sums",
    "score",
    "scores_from_sums",
]
