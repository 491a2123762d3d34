"""Metrics against independent references: Shrout & Fleiss's worked example, numpy, hand counts."""

from __future__ import annotations

import numpy as np
import pytest

from auhm.metrics import au_scores, icc, icc3_1, pair_sums, scores_from_sums
from auhm.metrics.bootstrap import bootstrap_metrics, bootstrap_scores

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges, and their Table 4 results.
SHROUT_FLEISS = np.array([[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]], float)
PUBLISHED = {"1,1": 0.17, "2,1": 0.29, "3,1": 0.71, "1,4": 0.44, "2,4": 0.62, "3,4": 0.91}


def anova_reference(x: list[list[float]]) -> dict[str, float]:
    """Shrout & Fleiss's mean squares with explicit loops, independent of auhm.metrics.icc."""
    n, k = len(x), len(x[0])
    grand = sum(sum(row) for row in x) / (n * k)
    row_means = [sum(row) / k for row in x]
    col_means = [sum(x[i][j] for i in range(n)) / n for j in range(k)]
    ss_total = sum((x[i][j] - grand) ** 2 for i in range(n) for j in range(k))
    ss_rows = sum(k * (m - grand) ** 2 for m in row_means)
    ss_cols = sum(n * (m - grand) ** 2 for m in col_means)
    ss_within = sum((x[i][j] - row_means[i]) ** 2 for i in range(n) for j in range(k))
    ss_err = ss_total - ss_rows - ss_cols
    bms, wms = ss_rows / (n - 1), ss_within / (n * (k - 1))
    jms, ems = ss_cols / (k - 1), ss_err / ((n - 1) * (k - 1))
    return {
        "1,1": (bms - wms) / (bms + (k - 1) * wms),
        "2,1": (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n),
        "3,1": (bms - ems) / (bms + (k - 1) * ems),
        "1,4": (bms - wms) / bms,
        "2,4": (bms - ems) / (bms + (jms - ems) / n),
        "3,4": (bms - ems) / bms,
    }


@pytest.mark.parametrize("kind", list(PUBLISHED))
def test_icc_matches_shrout_fleiss_worked_example(kind):
    reference = anova_reference(SHROUT_FLEISS.tolist())[kind]
    value = icc(SHROUT_FLEISS, kind)
    assert value == pytest.approx(reference, abs=1e-12)
    assert round(value, 2) == PUBLISHED[kind]
    assert icc(SHROUT_FLEISS, kind.replace("4", "k")) == value


def test_icc_rejects_unknown_kind_and_one_rater():
    with pytest.raises(ValueError, match="unknown ICC kind"):
        icc(SHROUT_FLEISS, "4,1")
    with pytest.raises(ValueError, match="for 4 raters"):
        icc(SHROUT_FLEISS, "3,2")
    assert icc(SHROUT_FLEISS, "ICC(3,1)") == icc(SHROUT_FLEISS)
    with pytest.raises(ValueError, match="raters"):
        icc(SHROUT_FLEISS[:, :1])


def test_icc3_1_matches_anova_for_two_raters():
    rng = np.random.default_rng(1)
    y = rng.uniform(0, 5, 40)
    p = 0.7 * y + rng.normal(0, 0.8, 40) + 0.5
    assert icc3_1(y, p) == pytest.approx(anova_reference(np.column_stack([y, p]).tolist())["3,1"], abs=1e-12)


def random_pairs(n=500, n_aus=4, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, (n, n_aus)).astype(float)
    p = np.clip(y + rng.normal(0, 1.0, y.shape), 0, 5)
    return y, p


def test_au_scores_against_numpy_and_anova():
    y, p = random_pairs()
    aus = (1, 2, 4, 12)
    s = au_scores(y, p, aus)
    assert list(s.index) == ["ICC", "MSE", "RMSE", "MAE", "PCC", "F1", "n"]
    assert list(s.columns) == ["AU01", "AU02", "AU04", "AU12", "Avg."]
    for j, col in enumerate(s.columns[:-1]):
        d = y[:, j] - p[:, j]
        assert s.loc["ICC", col] == pytest.approx(anova_reference(np.column_stack([y[:, j], p[:, j]]).tolist())["3,1"], abs=1e-10)
        assert s.loc["PCC", col] == pytest.approx(np.corrcoef(y[:, j], p[:, j])[0, 1], abs=1e-10)
        assert s.loc["MSE", col] == pytest.approx(np.mean(d**2), abs=1e-12)
        assert s.loc["RMSE", col] == pytest.approx(np.sqrt(np.mean(d**2)), abs=1e-12)
        assert s.loc["MAE", col] == pytest.approx(np.mean(np.abs(d)), abs=1e-12)
        assert s.loc["n", col] == len(y)
    for metric in ("ICC", "MSE", "MAE", "PCC", "F1"):
        assert s.loc[metric, "Avg."] == pytest.approx(s.loc[metric].iloc[:-1].mean())


def test_perfect_predictor_scores_one_and_constant_predictor_zero():
    y, _ = random_pairs(seed=2)
    perfect = au_scores(y, y.copy(), (1, 2, 4, 12))
    assert np.allclose(perfect.loc["ICC"], 1.0)
    assert np.allclose(perfect.loc["PCC"], 1.0)
    assert np.allclose(perfect.loc[["MSE", "MAE"]], 0.0)
    constant = au_scores(y, np.full_like(y, 0.1), (1, 2, 4, 12))  # 0.1 is not exact in binary
    assert np.allclose(constant.loc["ICC"], 0.0, atol=1e-12)
    assert constant.loc["PCC"].isna().all()  # undefined for a constant rater, not a number
    assert icc3_1(y[:, 0], np.full(len(y), 2.0)) == pytest.approx(0.0, abs=1e-12)


def test_icc_ignores_a_constant_offset_but_mse_does_not():
    y, p = random_pairs(seed=3)
    aus = (1, 2, 4, 12)
    base, shifted = au_scores(y, p, aus), au_scores(y, p + 0.75, aus)
    np.testing.assert_allclose(shifted.loc["ICC"], base.loc["ICC"], atol=1e-12)
    np.testing.assert_allclose(shifted.loc["PCC"], base.loc["PCC"], atol=1e-12)
    expected_mse = ((y - p - 0.75) ** 2).mean(axis=0)
    np.testing.assert_allclose(shifted.loc["MSE"].iloc[:-1], expected_mse, rtol=1e-12)
    assert (shifted.loc["MSE"].iloc[:-1] != base.loc["MSE"].iloc[:-1]).all()


def test_f1_against_hand_count():
    y = np.array([0, 1, 2, 3, 0, 0, 4, 1, 0, 2], float)
    p = np.array([0, 0.5, 2.5, 1, 1.2, 0, 3, 0.9, 0.2, 1.0])
    # occurrence at ≥ 1: true on idx 1,2,3,6,7,9; predicted on 2,3,4,6,9 -> TP 4 (2,3,6,9), FP 1 (4), FN 2 (1,7)
    assert au_scores(y, p, (1,)).loc["F1", "AU01"] == pytest.approx(2 * 4 / (2 * 4 + 1 + 2))
    # at ≥ 2: true 2,3,6,9; predicted 2,6 -> TP 2, FP 0, FN 2
    assert au_scores(y, p, (1,), threshold=2).loc["F1", "AU01"] == pytest.approx(4 / 6)
    assert np.isnan(au_scores(np.zeros(5), np.zeros(5), (1,)).loc["F1", "AU01"])  # no occurrence at all


def test_nan_rows_are_left_out_per_au():
    y, p = random_pairs(n=200, n_aus=2, seed=4)
    y[:30, 0] = np.nan
    p[100:110, 1] = np.nan
    s = au_scores(y, p, (1, 2))
    assert s.loc["n", "AU01"] == 170 and s.loc["n", "AU02"] == 190
    ref0 = au_scores(y[30:, :1], p[30:, :1], (1,))
    assert s.loc["ICC", "AU01"] == pytest.approx(ref0.loc["ICC", "AU01"], abs=1e-12)
    keep = np.r_[0:100, 110:200]
    assert s.loc["MAE", "AU02"] == pytest.approx(np.mean(np.abs(y[keep, 1] - p[keep, 1])))


def test_au_scores_checks_shapes():
    with pytest.raises(ValueError, match="AU columns"):
        au_scores(np.zeros((4, 2)), np.zeros((4, 2)), (1,))
    with pytest.raises(ValueError, match="differ in shape"):
        au_scores(np.zeros((4, 2)), np.zeros((5, 2)), (1, 2))


def test_weighted_video_sums_equal_scores_of_the_repeated_frames():
    """The bootstrap's shortcut: counts @ per-video sums scores the same as repeating those videos' frames."""
    y, p = random_pairs(n=300, n_aus=3, seed=5)
    videos = np.repeat(np.arange(6), 50)
    counts = np.array([2, 0, 1, 3, 0, 0])
    per_video = pair_sums(y, p, groups=videos, n_groups=6)
    np.testing.assert_allclose(per_video.sum(axis=0), pair_sums(y, p), atol=1e-9)
    fast = scores_from_sums(np.einsum("v,vsn->sn", counts.astype(float), per_video))
    rows = np.concatenate([np.flatnonzero(videos == v) for v in range(6) for _ in range(counts[v])])
    slow = au_scores(y[rows], p[rows], (1, 2, 4))
    for metric in ("ICC", "MSE", "MAE", "PCC", "F1", "n"):
        np.testing.assert_allclose(fast[metric], slow.loc[metric].iloc[:-1], rtol=1e-9, atol=1e-12)


def noisy_videos(n_videos, seed, frames=60):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 6, (n_videos * frames, 2)).astype(float)
    noise = rng.normal(0, 1.0, y.shape) + np.repeat(rng.normal(0, 0.7, (n_videos, 2)), frames, axis=0)
    return y, np.clip(y + noise, 0, 5), np.repeat(np.arange(n_videos), frames)


def test_bootstrap_interval_contains_estimate_and_narrows_with_more_videos():
    widths = []
    for n_videos in (6, 60):
        y, p, videos = noisy_videos(n_videos, seed=n_videos)
        point = au_scores(y, p, (1, 2))
        low, high = bootstrap_scores(y, p, videos, (1, 2), level=0.95, n_boot=400, seed=0)
        for metric in ("ICC", "MSE", "MAE", "PCC"):
            assert (low.loc[metric] <= point.loc[metric] + 1e-12).all()
            assert (point.loc[metric] <= high.loc[metric] + 1e-12).all()
        widths.append((high.loc["ICC", "Avg."] - low.loc["ICC", "Avg."]))
    assert widths[1] < 0.6 * widths[0]


def test_bootstrap_is_reproducible_and_resamples_videos():
    y, p, videos = noisy_videos(8, seed=1)
    a = bootstrap_metrics(y, p, videos, n_boot=50, seed=3)
    b = bootstrap_metrics(y, p, videos, n_boot=50, seed=3)
    np.testing.assert_array_equal(a["ICC"], b["ICC"])
    assert a["ICC"].shape == (50, 3)
    # every resample holds a whole number of 60-frame videos, 8 in all
    assert np.all(a["n"][:, :2] == 8 * 60)


def test_quantile_ignoring_nan_matches_numpy():
    import warnings

    from auhm.metrics.bootstrap import quantile_ignoring_nan

    rng = np.random.default_rng(7)
    a = rng.normal(size=(301, 6))
    a[rng.random(a.shape) < 0.1] = np.nan
    a[:, 3] = np.nan  # never defined
    a[1:, 4] = np.nan  # one value
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        for q in (0.0, 0.025, 0.5, 0.975, 1.0):
            np.testing.assert_allclose(quantile_ignoring_nan(a, q), np.nanquantile(a, q, axis=0), equal_nan=True)
