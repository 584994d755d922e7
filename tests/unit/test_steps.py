"""The steps detector on benchmark-like histories: small steps, timing noise, outliers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bench import steps as bench_steps
from dtf.cli import analysis_args
from projections.analytics import detectors
from projections.analytics.steps import clipped, detect_steps, noise_scale, running_median


def timings(seed: int, n: int, level: float = 50.0, noise: float = 0.01) -> np.ndarray:
    """A flat benchmark history with multiplicative Normal noise."""
    return level * (1 + noise * np.random.default_rng(seed).standard_normal(n))


def test_finds_a_five_percent_step_with_its_size_interval_and_location():
    x = timings(1, 200)
    x[120:] *= 1.05
    [cp] = detect_steps(x)
    assert abs(cp.index - 120) <= 2
    assert cp.index_low <= cp.index <= cp.index_high
    assert cp.pct_low is not None and cp.pct_high is not None
    assert cp.pct_low <= 5.0 <= cp.pct_high
    assert cp.pct_change == pytest.approx(5.0, abs=1.0)
    assert cp.p_value < 1e-6
    assert cp.before_mean == pytest.approx(x[: cp.index].mean())


def test_a_step_down_has_a_negative_size():
    x = timings(2, 150, level=3.0)
    x[60:] *= 0.8
    [cp] = detect_steps(x)
    assert abs(cp.index - 60) <= 2
    assert cp.pct_change == pytest.approx(-20.0, abs=1.5)


def test_outliers_are_not_change_points():
    x = timings(3, 300)
    for i in (40, 41, 150, 220, 299):  # a noisy neighbour, twice in a row once, and at the end
        x[i] *= 1.8
    assert detect_steps(x) == []


def test_steps_are_found_among_outliers():
    x = timings(4, 300, noise=0.02)
    x[100:] *= 1.07
    x[200:] *= 0.9
    x[[30, 150, 250]] *= 2.0
    found = [cp.index for cp in detect_steps(x)]
    assert len(found) == 2
    assert abs(found[0] - 100) <= 3 and abs(found[1] - 200) <= 3


def test_the_noise_scale_ignores_steps_and_outliers():
    rng = np.random.default_rng(5)
    y = 0.01 * rng.standard_normal(400)
    y[200:] += 0.3  # a step 30 times the noise
    y[[50, 300]] += 0.5
    assert noise_scale(y) == pytest.approx(0.01, rel=0.15)
    assert np.std(y) > 0.1  # what the global deviation would have said


def test_clipping_keeps_a_step_and_limits_an_outlier():
    y = np.concatenate([np.zeros(20), np.ones(20)])
    y[5] = 10.0
    cleaned = clipped(y, sigma=0.1, clip=3.0)
    assert cleaned[5] == pytest.approx(0.3)
    assert np.array_equal(cleaned[20:], y[20:])
    assert running_median(np.array([1.0, 1.0, 9.0, 1.0, 1.0]), 1)[2] == 1.0


def test_series_with_zero_or_negative_values_are_analysed_as_they_are():
    # A negative level (a difference of timings, say) has no logarithm; the size is then in
    # percent of the magnitude of the median before the change.
    x = -timings(6, 80, level=10.0)
    x[40:] += 5.0
    [cp] = detect_steps(x)
    assert cp.index == 40
    assert cp.pct_change == pytest.approx(50.0, abs=3.0)


@pytest.mark.parametrize("values", [[], [1.0], [2.0] * 9, [7.5] * 100])
def test_short_or_constant_series_have_no_change(values):
    assert detect_steps(values) == []


@pytest.mark.parametrize(
    ("values", "kwargs"),
    [
        ([1.0, math.nan] * 10, {}),
        ([1.0, math.inf] * 10, {}),
        ([1.0] * 20, {"min_size": 2}),
        ([1.0] * 20, {"alpha": 0.0}),
        ([1.0] * 20, {"clip": 0.0}),
        ([1.0] * 20, {"penalty_scale": -1.0}),
    ],
)
def test_bad_input_is_a_value_error(values, kwargs):
    with pytest.raises(ValueError):
        detect_steps(values, **kwargs)


def test_meets_the_goal_on_generated_benchmark_histories():
    # A slice of `bench/steps.py`'s histories (same generator and seed): recall of planted
    # steps >= 0.9 within 5 points and at most one false alarm per 500 points.
    result = bench_steps.score(bench_steps.histories(count=60), detect_steps)
    assert result.planted > 50
    assert bench_steps.met(result), bench_steps.report("steps", result)


def test_the_cli_offers_every_detector_with_the_registry_default_first():
    assert set(analysis_args.DETECTORS) == set(detectors.DETECTORS)
    assert analysis_args.DETECTORS[0] == detectors.DEFAULT_DETECTOR
