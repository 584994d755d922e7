"""Change-point detection on synthetic series with planted changes, noise and edge cases."""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest
from scipy import stats

from bench.tcpd import (
    DEFAULT_DATA,
    GOAL_COVER,
    GOAL_F1,
    load_values,
    score_series,
    series_names,
)
from projections.analytics.changepoint import (
    ChangePoint,
    binary_segmentation,
    confirmed,
    detect,
    segment_cost,
    welch_p_value,
)


def noise(seed: int, n: int, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=scale, size=n)


def near(found: list[ChangePoint], planted: list[int], tolerance: int = 2) -> bool:
    """One change per planted index, each within `tolerance` of it."""
    return len(found) == len(planted) and all(
        abs(cp.index - index) <= tolerance for cp, index in zip(found, planted, strict=True)
    )


def test_finds_one_planted_shift_with_its_statistics():
    x = 10 + noise(1, 200)
    x[120:] += 3
    found = detect(x)
    assert near(found, [120])
    [cp] = found
    assert cp.before_mean == pytest.approx(x[: cp.index].mean())
    assert cp.after_mean == pytest.approx(x[cp.index :].mean())
    assert cp.pct_change == pytest.approx((cp.after_mean - cp.before_mean) / cp.before_mean * 100)
    reference = stats.ttest_ind(x[: cp.index], x[cp.index :], equal_var=False).pvalue
    assert cp.p_value == pytest.approx(reference)
    assert cp.p_value < 1e-10


@pytest.mark.parametrize("model", ["mean_or_linear", "linear", "mean"])
def test_finds_two_planted_shifts(model):
    x = 10 + noise(2, 300)
    x[100:200] += 4
    x[200:] += 1.5
    found = detect(x, model=model)
    assert near(found, [100, 200])
    assert found[0].pct_change > 0 > found[1].pct_change
    # Neighbouring segments share their mean: the after-mean of one is the before-mean of the next.
    assert found[0].after_mean == found[1].before_mean


def test_finds_a_large_step_in_twenty_points():
    # A single line absorbs most of a step this short; flat segments must still win.
    x = 10 + noise(12, 20)
    x[10:] += 5
    assert near(detect(x), [10])
    assert detect(x, model="linear") == []


def test_finds_a_downward_shift_in_a_short_series():
    x = 50 + noise(7, 40, scale=0.5)
    x[25:] -= 3
    found = detect(x)
    assert near(found, [25])
    [cp] = found
    assert cp.pct_change == pytest.approx(-6, abs=1.5)


@pytest.mark.parametrize(("seed", "n"), [(0, 30), (1, 100), (2, 200), (3, 500), (4, 1000)])
def test_finds_nothing_in_pure_noise(seed, n):
    assert detect(100 + noise(seed, n)) == []


def test_finds_a_change_of_slope():
    i = np.arange(200)
    x = np.where(i < 100, 0.0, 0.1 * (i - 100)) + noise(3, 200, scale=0.5)
    # A kink is located less sharply than a step.
    assert near(detect(x), [100], tolerance=8)


def test_a_steady_trend_is_not_a_change():
    x = 5 + 0.05 * np.arange(300) + noise(8, 300)
    assert detect(x) == []


def test_pct_change_is_none_when_the_before_mean_is_zero():
    before = np.tile([1.0, -1.0], 20)
    after = 5 + np.tile([0.1, -0.1], 10)
    [cp] = detect(np.concatenate([before, after]))
    assert (cp.index, cp.before_mean, cp.after_mean) == (40, 0.0, 5.0)
    assert (cp.pct_change, cp.pct_low, cp.pct_high) == (None, None, None)


@pytest.mark.parametrize("values", [[], [1.0], [1.0, 2.0, 3.0], [4.0] * 3, [7.5] * 100])
def test_short_or_constant_series_have_no_change(values):
    assert detect(values) == []


def test_a_series_shorter_than_two_segments_has_no_change():
    # Nine points cannot hold two segments of the default minimum size (5).
    assert detect(np.array([0.0] * 4 + [100.0] * 5)) == []
    assert near(detect(np.array([0.0, 0.1] * 5 + [100.0, 100.1] * 5)), [10])


@pytest.mark.parametrize(
    "values",
    [
        [1.0, None, 2.0] * 10,
        [1.0, math.nan, 2.0] * 10,
        [1.0, math.inf, 2.0] * 10,
        [[1.0, 2.0], [3.0, 4.0]],
        ["a", "b"],
    ],
)
def test_rejects_missing_or_malformed_values(values):
    with pytest.raises(ValueError):
        detect(values)


@pytest.mark.parametrize(
    "kwargs",
    [{"model": "cubic"}, {"min_size": 2}, {"penalty_scale": -1.0}, {"alpha": 0.0}],
)
def test_rejects_bad_parameters(kwargs):
    with pytest.raises(ValueError):
        detect(noise(0, 50), **kwargs)


def test_long_series_are_fast():
    x = noise(4, 200_000)
    x[50_000:] += 1
    x[150_000:] -= 2
    started = time.perf_counter()
    found = detect(x)
    assert time.perf_counter() - started < 3
    assert near(found, [50_000, 150_000])


def test_linear_cost_matches_a_least_squares_fit():
    x = noise(5, 60) + 0.3 * np.arange(60)
    cost = segment_cost(x, "linear")
    for start, end in [(0, 60), (10, 25), (40, 43)]:
        t = np.arange(start, end)
        fit = np.polyfit(t, x[start:end], 1)
        rss = float(((x[start:end] - np.polyval(fit, t)) ** 2).sum())
        got = cost(np.array([start]), np.array([end]))[0]
        assert got == pytest.approx(rss + math.log(end - start), abs=1e-9)
    mean_cost = segment_cost(x, "mean")(np.array([5]), np.array([30]))[0]
    assert mean_cost == pytest.approx(x[5:30].var() * 25 + math.log(25))


def test_mean_or_linear_cost_charges_the_slope():
    trend = 0.5 * np.arange(30) + noise(13, 30, scale=0.1)
    flat = noise(14, 30)
    for z in (trend, flat):
        starts, ends = np.array([0, 4]), np.array([30, 20])
        mean = segment_cost(z, "mean")(starts, ends)
        line = segment_cost(z, "linear")(starts, ends)
        both = segment_cost(z, "mean_or_linear")(starts, ends)
        np.testing.assert_allclose(both, np.minimum(mean, line + np.log(ends - starts)))
    whole = (np.array([0]), np.array([30]))
    # A steep trend pays for its slope; noise does not.
    assert segment_cost(trend, "mean_or_linear")(*whole) < segment_cost(trend, "mean")(*whole)
    assert segment_cost(flat, "mean_or_linear")(*whole) == segment_cost(flat, "mean")(*whole)


def test_binary_segmentation_respects_the_minimum_size():
    x = np.array([0.0] * 3 + [10.0] * 20)
    assert binary_segmentation(len(x), segment_cost(x, "mean"), 1.0, 3) == [3]
    assert binary_segmentation(len(x), segment_cost(x, "mean"), 1.0, 4) == [4]


def test_welch_confirmation_merges_spurious_changes_and_retests():
    x = 10 + noise(6, 200)
    x[100:] += 2
    kept = confirmed(x, [30, 60, 100, 150], alpha=0.001)
    [(start, change, end, p)] = kept
    assert (start, change, end) == (0, 100, 200)
    assert p == pytest.approx(stats.ttest_ind(x[:100], x[100:], equal_var=False).pvalue)


def test_welch_p_value_of_constant_segments():
    assert welch_p_value(np.array([1.0, 1.0]), np.array([1.0, 1.0])) == 1.0
    assert welch_p_value(np.array([1.0, 1.0]), np.array([2.0, 2.0])) == 0.0


@pytest.mark.skipif(
    not (DEFAULT_DATA / "annotations.json").is_file(), reason=f"no TCPD data at {DEFAULT_DATA}"
)
def test_default_detector_meets_the_tcpd_goal():
    annotations = json.loads((DEFAULT_DATA / "annotations.json").read_text())
    names = series_names(DEFAULT_DATA)
    assert len(names) == 25
    scores = [score_series(n, load_values(DEFAULT_DATA, n), annotations[n], {}) for n in names]
    assert np.mean([s.f1 for s in scores]) >= GOAL_F1
    assert np.mean([s.cover for s in scores]) >= GOAL_COVER
