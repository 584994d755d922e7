"""Ranking configurations by samples of one metric: order, margins, and when it cannot tell."""

from __future__ import annotations

import numpy as np
import pytest

from projections.analytics.ranking import rank


def sample(seed: int, center: float, n: int = 20, spread: float = 1.0) -> np.ndarray:
    return center + spread * np.random.default_rng(seed).standard_normal(n)


def test_lower_is_better_ranks_by_median_with_margins_to_the_next():
    ranking = rank(
        {"a10": sample(1, 50), "h100": sample(2, 20), "cpu": sample(3, 100)}, direction="lower"
    )
    assert [e.name for e in ranking.entries] == ["h100", "a10", "cpu"]
    assert ranking.decided and ranking.reason == ""
    first, second, last = ranking.entries
    # h100 is ~60% faster than a10: the shift of the medians in percent of a10's.
    assert first.margin_pct == pytest.approx(60, abs=3)
    assert first.margin_low <= first.margin_pct <= first.margin_high
    assert first.verdict == "significant" and first.p_value < 1e-6
    assert second.margin_pct == pytest.approx(50, abs=3)
    assert (last.margin_pct, last.p_value, last.verdict) == (None, None, None)
    assert first.summary.count == 20


def test_higher_is_better_reverses_the_order_and_keeps_margins_positive():
    ranking = rank({"slow": sample(4, 400), "fast": sample(5, 500)}, direction="higher")
    assert ranking.best.name == "fast"
    assert ranking.best.margin_pct == pytest.approx(25, abs=1)


def test_a_margin_inside_the_noise_is_not_significant():
    noise = sample(6, 10.0, spread=2.0)
    ranking = rank({"x": noise, "y": noise[::-1] + 0.05}, direction="lower")
    assert not ranking.decided
    assert ranking.best.verdict == "not significant"
    assert "not significant" in ranking.reason and "p = " in ranking.reason


def test_too_few_samples_are_too_thin_even_when_far_apart():
    ranking = rank({"x": [1.0, 1.1], "y": [9.0, 9.1, 9.2, 9.3]}, direction="lower")
    assert not ranking.decided
    assert ranking.best.verdict == "too few samples"
    assert ranking.reason == "too few samples: x has 2 (at least 3 needed)"


def test_one_configuration_cannot_be_compared():
    ranking = rank({"only": [1.0, 2.0, 3.0]}, direction="lower")
    assert not ranking.decided
    assert ranking.reason == "only one configuration was measured"


def test_ties_are_broken_by_name():
    ranking = rank({"b": [1.0, 2.0, 3.0], "a": [1.0, 2.0, 3.0]}, direction="lower")
    assert [e.name for e in ranking.entries] == ["a", "b"]
    assert ranking.best.margin_pct == 0


@pytest.mark.parametrize(
    ("samples", "kwargs"),
    [
        ({}, {}),
        ({"x": []}, {}),
        ({"x": [1.0, float("nan")]}, {}),
        ({"x": [1.0]}, {"direction": "up"}),
        ({"x": [1.0]}, {"alpha": 1.0}),
        ({"x": [1.0]}, {"min_samples": 0}),
    ],
)
def test_bad_input_is_a_value_error(samples, kwargs):
    with pytest.raises(ValueError):
        rank(samples, **{"direction": "lower", **kwargs})
