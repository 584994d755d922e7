"""Comparing a candidate with a baseline, metric by metric, for `dtf regressions`.

The runs of each side come from `projections.queries.refs`. Samples are the values of each
metric x dims x hardware in those runs, plus each test item's passed durations as metric
`duration:<nodeid>` (lower is better) when both sides have at least `MIN_DURATION_SAMPLES`.
Each metric is compared with Mann-Whitney and the Hodges-Lehmann shift
(`projections.analytics.stats`), and the verdicts hold the false discovery rate across all
metrics with Benjamini-Hochberg.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dtf.errors import ProjectionError
from projections.analytics.stats import (
    Comparison,
    Direction,
    Verdict,
    compare_samples,
    judge_all,
)
from projections.queries.read import CaseRow, ResultRow
from projections.queries.series import Series, duration_series, metric_series

MIN_DURATION_SAMPLES = 3
VERDICT_ORDER: dict[str, int] = {"regression": 0, "improvement": 1, "unchanged": 2}


@dataclass(frozen=True, slots=True)
class MetricChange:
    """One metric's comparison, its BH-adjusted p-value and verdict."""

    metric: str
    unit: str
    comparison: Comparison
    q_value: float
    verdict: Verdict


def samples(results: Iterable[ResultRow], cases: Iterable[CaseRow]) -> dict[str, Series]:
    """Every metric's sample (as a series) and every test item's passed durations."""
    found = {s.label: s for s in metric_series(results)}
    found.update((s.label, s) for s in duration_series(cases))
    return found


def compare(
    baseline: dict[str, Series],
    candidate: dict[str, Series],
    *,
    alpha: float,
    threshold_pct: float,
) -> list[MetricChange]:
    """Judge every metric present on both sides; regressions first, then by q-value."""
    comparisons: dict[str, Comparison] = {}
    units: dict[str, str] = {}
    for label in sorted(baseline.keys() & candidate.keys()):
        base, cand = baseline[label], candidate[label]
        if base.key is None and min(len(base.values), len(cand.values)) < MIN_DURATION_SAMPLES:
            continue
        direction: Direction = "higher" if base.direction == "higher" else "lower"
        comparisons[label] = compare_samples(base.values, cand.values, direction=direction)
        units[label] = base.unit
    if not comparisons:
        raise ProjectionError("no metric has samples on both sides; check the refs")
    judged = judge_all(comparisons, alpha=alpha, threshold_pct=threshold_pct)
    changes = [
        MetricChange(label, units[label], j.comparison, j.q_value, j.verdict)
        for label, j in judged.items()
    ]
    return sorted(changes, key=lambda c: (VERDICT_ORDER[c.verdict], c.q_value, c.metric))


def regressed(changes: Iterable[MetricChange]) -> bool:
    return any(c.verdict == "regression" for c in changes)


def change_json(change: MetricChange) -> dict[str, Any]:
    c = change.comparison
    return {
        "metric": change.metric,
        "unit": change.unit,
        "direction": c.direction,
        "n_baseline": c.n_baseline,
        "n_candidate": c.n_candidate,
        "baseline_median": c.baseline_median,
        "candidate_median": c.candidate_median,
        "shift": c.shift,
        "shift_low": c.shift_low,
        "shift_high": c.shift_high,
        "confidence": c.confidence,
        "pct_change": c.pct_change,
        "pct_low": c.pct_low,
        "pct_high": c.pct_high,
        "p_value": c.p_value,
        "q_value": change.q_value,
        "verdict": change.verdict,
    }
