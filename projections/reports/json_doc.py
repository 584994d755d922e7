"""`dtf report --format json`: the report as one JSON document.

Infinite or undefined numbers (a z-score against a spread of 0) are written as null, so the
output is strict JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

from projections.analytics.stats import Summary
from projections.queries.series_analysis import SeriesAnalysis
from projections.queries.summaries import BestConfiguration, Configuration, ItemStats
from projections.queries.trends import located_json
from projections.reports.content import Report

SCHEMA = 1


def render(report: Report) -> str:
    return dumps(document(report))


def dumps(value: Any) -> str:
    """Strict, indented JSON of plain values, with a final newline."""
    return json.dumps(_strict(value), indent=2, allow_nan=False) + "\n"


def document(report: Report) -> dict[str, Any]:
    """The report as plain JSON values."""
    return {
        "schema": SCHEMA,
        "database": report.database,
        "generated_at": report.generated_at,
        "since": report.since,
        "runs": report.runs,
        "tests": {
            "count": len(report.tests),
            "flaky": [_test(t) for t in report.flaky],
            "failing": [_test(t) for t in report.failing],
            "slowest": [_test(t) for t in report.slowest],
            "items": [_test(t, history=True) for t in report.tests],
        },
        "benchmarks": [
            {
                "metric": m.series.label,
                "name": m.series.metric,
                "unit": m.series.unit,
                "direction": m.series.direction,
                "dims": dict(m.series.key.dims) if m.series.key else {},
                "hardware": m.series.key.hardware if m.series.key else "",
                **_summary(m.summary),
            }
            for m in report.benchmarks
        ],
        "best_configurations": [_best(b) for b in report.best],
        "series": [_analysis(a) for a in report.analyses],
        "z_threshold": report.z_threshold,
    }


def _summary(summary: Summary | None) -> dict[str, Any]:
    if summary is None:
        return {}
    return {
        "count": summary.count,
        "mean": summary.mean,
        "median": summary.median,
        "p95": summary.p95,
        "std": summary.std,
        "ci_low": summary.ci_low,
        "ci_high": summary.ci_high,
    }


def _test(t: ItemStats, *, history: bool = False) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "nodeid": t.nodeid,
        "count": t.count,
        "outcomes": t.outcomes,
        "pass_rate": t.pass_rate,
        "last_outcome": t.last_outcome,
        "flaky": t.flaky,
        "flaky_commits": list(t.flaky_commits),
        "duration": _summary(t.duration) or None,
    }
    if history:
        entry["duration_history"] = list(t.history)
    return entry


def _configuration(c: Configuration) -> dict[str, Any]:
    return {"hardware": c.hardware, **_summary(c.summary)}


def _best(b: BestConfiguration) -> dict[str, Any]:
    return {
        "benchmark": b.benchmark,
        "unit": b.unit,
        "direction": b.direction,
        "best": b.best.hardware,
        "runner_up": b.runner_up.hardware,
        "margin_pct": b.margin_pct,
        "margin_low": b.margin_low,
        "margin_high": b.margin_high,
        "p_value": b.p_value,
        "significant": b.significant,
        "configurations": [_configuration(c) for c in b.configurations],
    }


def _analysis(a: SeriesAnalysis) -> dict[str, Any]:
    s = a.series
    entry: dict[str, Any] = {
        "series": s.label,
        "unit": s.unit,
        "direction": s.direction,
        "points": len(s.values),
        "change_points": [located_json(c) for c in a.changes],
        "segment_start": a.segment_start,
        "latest": s.values[-1],
        "anomaly": None,
        "forecast": None,
    }
    if a.anomaly is not None:
        entry["anomaly"] = {
            "value": a.anomaly.value,
            "median": a.anomaly.median,
            "spread": a.anomaly.spread,
            "z": a.anomaly.z,
            "anomalous": a.anomaly.anomalous,
        }
    if a.forecast is not None:
        f = a.forecast
        entry["forecast"] = {
            "slope": f.slope,
            "slope_low": f.slope_low,
            "slope_high": f.slope_high,
            "tau": f.tau,
            "p_value": f.p_value,
            "trend": f.trend,
            "points": [
                {"index": p.index, "value": p.value, "low": p.low, "high": p.high} for p in f.points
            ],
        }
    return entry


def _strict(value: Any) -> Any:
    """`value` with non-finite floats replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    return value
