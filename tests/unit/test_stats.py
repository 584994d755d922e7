"""Regression comparison, FDR control, summaries, anomalies and forecasts, with scipy as the
reference where it has one."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import stats

from projections.analytics.stats import (
    Comparison,
    benjamini_hochberg,
    classify,
    compare_samples,
    forecast,
    hodges_lehmann_rank,
    judge_all,
    mann_whitney_cdf,
    robust_anomaly,
    summarize,
)

BASELINE = [10.2, 10.5, 9.9, 10.1, 10.4, 10.0, 10.3, 9.8, 10.6, 10.2]
SLOWER = [11.1, 11.4, 10.9, 11.0, 11.3, 11.2, 10.8, 11.5, 11.1, 11.2]


def comparison(shift: float, p_value: float, direction: str = "lower", base: float = 100.0):
    """A hand-made Comparison with a given shift and p-value."""
    pct = None if base == 0 else shift / abs(base) * 100
    return Comparison(
        10, 10, base, base + shift, shift, shift, shift, 0.95, pct, pct, pct, p_value, direction
    )


def test_mann_whitney_cdf_matches_enumeration():
    m, n = 3, 4
    counts = np.zeros(m * n + 1)
    for ranks in itertools.combinations(range(m + n), m):
        u = sum(ranks) - m * (m - 1) // 2
        counts[u] += 1
    np.testing.assert_allclose(mann_whitney_cdf(m, n), np.cumsum(counts) / counts.sum())


@pytest.mark.parametrize(("m", "n"), [(5, 5), (7, 12), (20, 30), (49, 49)])
def test_mann_whitney_cdf_matches_scipy_exact(m, n):
    cdf = mann_whitney_cdf(m, n)
    y = np.arange(n, dtype=float)
    for u in (0, 3, m * n // 4, m * n // 2):
        # m values, each placed above as many y values as still needed to reach U = u.
        above = [min(max(u - n * i, 0), n) for i in range(m)]
        x = np.array([k - 0.5 for k in above]) + np.arange(m) * 1e-6
        expected = stats.mannwhitneyu(x, y, method="exact", alternative="less").pvalue
        assert cdf[u] == pytest.approx(expected, rel=1e-9)


def test_comparison_matches_scipy_and_the_pairwise_differences():
    result = compare_samples(BASELINE, SLOWER)
    differences = np.subtract.outer(SLOWER, BASELINE).ravel()
    reference = stats.mannwhitneyu(SLOWER, BASELINE, alternative="two-sided").pvalue
    assert result.p_value == pytest.approx(reference)
    assert result.shift == pytest.approx(np.median(differences))
    assert result.baseline_median == pytest.approx(np.median(BASELINE))
    assert result.pct_change == pytest.approx(result.shift / np.median(BASELINE) * 100)
    assert result.shift_low <= result.shift <= result.shift_high
    assert result.pct_low == pytest.approx(result.shift_low / np.median(BASELINE) * 100)
    assert result.confidence >= 0.95
    assert (result.n_baseline, result.n_candidate) == (10, 10)


def test_interval_is_the_inverted_exact_mann_whitney_test():
    rng = np.random.default_rng(11)
    base, cand = rng.normal(size=8), rng.normal(0.7, size=11)
    result = compare_samples(base, cand)

    def p_at(delta: float) -> float:
        return stats.mannwhitneyu(cand - delta, base, method="exact").pvalue

    eps = 1e-9
    # Just outside the interval the exact test rejects at 5%, just inside it does not.
    assert p_at(result.shift_low - eps) <= 0.05 < p_at(result.shift_low + eps)
    assert p_at(result.shift_high + eps) <= 0.05 < p_at(result.shift_high - eps)


def test_large_samples_use_the_normal_approximation():
    k_normal, cover_normal = hodges_lehmann_rank(50, 50, 0.95)
    cdf = mann_whitney_cdf(50, 50)
    k_exact = int(np.searchsorted(cdf, 0.025, side="right"))
    assert abs(k_normal - k_exact) <= 1
    assert cover_normal == pytest.approx(1 - 2 * cdf[k_exact - 1], abs=0.002)
    rng = np.random.default_rng(3)
    result = compare_samples(rng.normal(size=200), rng.normal(1.0, size=300))
    assert result.shift_low < 1.0 < result.shift_high
    assert result.confidence == pytest.approx(0.95, abs=0.01)


def test_tiny_samples_report_the_coverage_they_achieve():
    result = compare_samples([1.0, 2.0], [3.0, 4.0])
    assert (result.shift_low, result.shift_high) == (1.0, 3.0)
    assert result.confidence == pytest.approx(1 - 2 / 6)


def test_identical_constant_samples_show_no_change():
    result = compare_samples([5.0] * 6, [5.0] * 6)
    assert result.p_value == 1.0
    assert result.shift == 0.0
    assert classify(result) == "unchanged"


def test_zero_baseline_median_has_no_percentages():
    result = compare_samples([-1.0, 0.0, 1.0], [2.0, 3.0, 4.0])
    assert result.pct_change is None and result.pct_low is None


@pytest.mark.parametrize(
    ("shift", "p_value", "direction", "expected"),
    [
        (5.0, 0.001, "lower", "regression"),
        (-5.0, 0.001, "lower", "improvement"),
        (5.0, 0.001, "higher", "improvement"),
        (-5.0, 0.001, "higher", "regression"),
        (5.0, 0.2, "lower", "unchanged"),
        (0.5, 0.001, "lower", "unchanged"),  # 0.5% is under the 1% practical threshold
        (0.0, 0.001, "lower", "unchanged"),
    ],
)
def test_classify_respects_direction_significance_and_threshold(
    shift, p_value, direction, expected
):
    assert classify(comparison(shift, p_value, direction)) == expected


def test_classify_uses_the_given_adjusted_p_value_and_threshold():
    c = comparison(5.0, 0.001)
    assert classify(c, p_value=0.2) == "unchanged"
    assert classify(c, threshold_pct=10.0) == "unchanged"
    assert classify(comparison(0.1, 0.001, base=0.0)) == "regression"


def test_end_to_end_regression_of_a_slower_candidate():
    assert classify(compare_samples(BASELINE, SLOWER)) == "regression"
    assert classify(compare_samples(BASELINE, SLOWER, direction="higher")) == "improvement"


def test_benjamini_hochberg_matches_scipy():
    rng = np.random.default_rng(5)
    for p in (
        rng.uniform(size=20),
        np.concatenate([rng.uniform(0, 0.01, 5), rng.uniform(size=15)]),
    ):
        np.testing.assert_allclose(
            benjamini_hochberg(p), stats.false_discovery_control(p, method="bh")
        )
    # Sorted: 0.01*4/1, 0.03*4/2, 0.04*4/3, 0.2*4/4, then the running minimum from the top.
    expected = [0.04, 0.16 / 3, 0.16 / 3, 0.2]
    assert benjamini_hochberg([0.01, 0.04, 0.03, 0.2]) == pytest.approx(expected)
    assert benjamini_hochberg([]) == []


@pytest.mark.parametrize("bad", [[0.1, 1.5], [-0.1], [math.nan], [[0.1]]])
def test_benjamini_hochberg_rejects_non_p_values(bad):
    with pytest.raises(ValueError):
        benjamini_hochberg(bad)


def test_judge_all_controls_the_false_discovery_rate():
    comparisons = {
        "strong": comparison(5.0, 0.001),
        "weak": comparison(5.0, 0.03),
        "better": comparison(-5.0, 0.004),
        "noise": comparison(5.0, 0.5),
    }
    judged = judge_all(comparisons)
    q = stats.false_discovery_control([0.001, 0.03, 0.004, 0.5], method="bh")
    assert [j.q_value for j in judged.values()] == pytest.approx(q)
    # weak: q = 0.03 * 4 / 3 = 0.04, still under 0.05; at alpha 0.01 it no longer counts.
    assert {name: j.verdict for name, j in judged.items()} == {
        "strong": "regression",
        "weak": "regression",
        "better": "improvement",
        "noise": "unchanged",
    }
    assert judge_all(comparisons, alpha=0.01)["weak"].verdict == "unchanged"


def test_summary_matches_numpy_and_scipy():
    values = [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0]
    s = summarize(values)
    low, high = stats.t.interval(0.95, len(values) - 1, np.mean(values), stats.sem(values))
    assert (s.count, s.mean, s.median) == (8, np.mean(values), np.median(values))
    assert s.p95 == pytest.approx(np.percentile(values, 95))
    assert s.std == pytest.approx(np.std(values, ddof=1))
    assert (s.ci_low, s.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_summary_of_one_value_has_no_spread():
    s = summarize([4.2])
    assert (s.count, s.mean, s.median, s.p95) == (1, 4.2, 4.2, 4.2)
    assert s.std is None and s.ci_low is None and s.ci_high is None


@pytest.mark.parametrize("bad", [[], [1.0, math.nan], [[1.0, 2.0]]])
def test_summary_rejects_bad_samples(bad):
    with pytest.raises(ValueError):
        summarize(bad)


def test_robust_anomaly_known_answers():
    a = robust_anomaly(10.0, [1.0, 2.0, 3.0, 4.0, 100.0])
    assert (a.median, a.spread) == (3.0, pytest.approx(1.4826))
    assert a.z == pytest.approx(7 / 1.4826)
    assert a.anomalous
    assert not robust_anomaly(4.0, [1.0, 2.0, 3.0, 4.0, 100.0]).anomalous
    assert robust_anomaly(10.0, [1.0, 2.0, 3.0, 4.0, 100.0], threshold=5.0).anomalous is False


def test_robust_anomaly_falls_back_to_the_mean_deviation_when_mad_is_zero():
    a = robust_anomaly(6.0, [5.0, 5.0, 5.0, 5.0, 6.0])
    assert a.spread == pytest.approx(1.253314 * 0.2)
    assert a.z == pytest.approx(1 / (1.253314 * 0.2))
    assert robust_anomaly(5.0, [5.0] * 4).z == 0.0
    constant = robust_anomaly(4.0, [5.0] * 4)
    assert constant.z == -math.inf and constant.anomalous


def test_forecast_of_an_exact_line():
    f = forecast([2.0 + 3.0 * i for i in range(10)], steps=2)
    assert (f.slope, f.intercept, f.tau) == pytest.approx((3.0, 2.0, 1.0))
    assert f.trend and f.p_value < 1e-5
    assert f.residual_scale == 0.0
    assert [(p.index, p.value, p.low, p.high) for p in f.points] == [
        (10, 32.0, 32.0, 32.0),
        (11, 35.0, 35.0, 35.0),
    ]


def test_forecast_matches_scipy_and_the_documented_interval():
    rng = np.random.default_rng(9)
    y = 50 + 0.4 * np.arange(40) + rng.normal(size=40)
    f = forecast(y, steps=3)
    x = np.arange(40)
    slope, intercept, low, high = stats.theilslopes(y, x)
    assert (f.slope, f.intercept, f.slope_low, f.slope_high) == pytest.approx(
        (slope, intercept, low, high)
    )
    tau = stats.kendalltau(x, y)
    assert (f.tau, f.p_value) == pytest.approx((tau.statistic, tau.pvalue))
    residuals = y - (intercept + slope * x)
    s = 1.4826 * np.median(np.abs(residuals - np.median(residuals)))
    half = stats.t.ppf(0.975, 38) * s * math.sqrt(1 + 1 / 40 + (42 - 19.5) ** 2 / (x.var() * 40))
    last = f.points[-1]
    assert last.index == 42
    assert (last.low, last.high) == pytest.approx((last.value - half, last.value + half))
    assert f.points[0].high - f.points[0].low < last.high - last.low


def test_forecast_of_a_flat_series_has_no_trend():
    f = forecast([7.0] * 6)
    assert (f.slope, f.tau, f.p_value, f.trend) == (0.0, 0.0, 1.0, False)
    assert f.points[0].value == 7.0


def test_forecast_needs_three_values_and_a_step():
    with pytest.raises(ValueError):
        forecast([1.0, 2.0])
    with pytest.raises(ValueError):
        forecast([1.0, 2.0, 3.0], steps=0)
