"""The tables of a report as header and rows of display strings, shared by the Markdown and
HTML writers so both say the same thing."""

from __future__ import annotations

from collections.abc import Sequence

from projections.queries.series_analysis import SeriesAnalysis
from projections.queries.summaries import BestConfiguration, ItemStats, MetricStats
from projections.reports import display
from projections.reports.content import Report

Table = tuple[list[str], list[list[str]]]


def heading_facts(report: Report) -> list[str]:
    period = f"since {display.when(report.since)} UTC" if report.since else "all history"
    return [
        f"database: {report.database}",
        f"generated: {display.when(report.generated_at)} UTC ({period})",
        f"runs: {report.runs}, test items: {len(report.tests)}, "
        f"benchmark series: {len(report.benchmarks)}",
    ]


def sections(
    report: Report,
) -> list[tuple[str, Sequence[str], list[list[str]], str]]:
    """(title, header, rows, text when empty) of every section, in order."""
    return [
        ("Flaky tests", *test_rows(report.flaky), "No flaky tests."),
        ("Failing tests", *test_rows(report.failing), "No failing tests."),
        ("Slowest tests", *test_rows(report.slowest), "No timed tests."),
        ("Benchmarks", *benchmark_rows(report.benchmarks), "No benchmark results."),
        (
            "Best configuration per benchmark",
            *best_rows(report.best),
            "No benchmark ran on more than one hardware class.",
        ),
        ("Change points", *change_rows(report.changes), "No change points."),
        (
            f"Anomalies (|robust z| > {display.num(report.z_threshold)})",
            *anomaly_rows(report.anomalies),
            "The latest values are all within their segments.",
        ),
        ("Forecasts", *forecast_rows(report.forecasts), "Too little history to forecast."),
    ]


def test_rows(tests: Sequence[ItemStats]) -> Table:
    header = [
        "test",
        "results",
        "pass rate",
        "outcomes",
        "mean",
        "median",
        "p95",
        "95% CI",
        "flaky on",
    ]
    rows = []
    for t in tests:
        d = t.duration
        rows.append(
            [
                t.nodeid,
                str(t.count),
                display.rate(t.pass_rate),
                display.tally(t.outcomes),
                display.num(d.mean if d else None, "s"),
                display.num(d.median if d else None, "s"),
                display.num(d.p95 if d else None, "s"),
                _interval(d.ci_low, d.ci_high) if d else "-",
                ", ".join(display.short_commit(c) for c in t.flaky_commits[:3]) or "-",
            ]
        )
    return header, rows


def benchmark_rows(benchmarks: Sequence[MetricStats]) -> Table:
    header = ["metric", "unit", "better", "n", "mean", "median", "p95", "std", "95% CI"]
    rows = [
        [
            m.series.label,
            m.series.unit or "-",
            m.series.direction,
            str(m.summary.count),
            display.num(m.summary.mean),
            display.num(m.summary.median),
            display.num(m.summary.p95),
            display.num(m.summary.std),
            _interval(m.summary.ci_low, m.summary.ci_high),
        ]
        for m in benchmarks
    ]
    return header, rows


def best_rows(best: Sequence[BestConfiguration]) -> Table:
    header = ["benchmark", "best", "median", "runner-up", "median", "margin", "95% CI", "p"]
    rows = [
        [
            b.benchmark,
            b.best.hardware or "-",
            display.num(b.best.summary.median, b.unit),
            b.runner_up.hardware or "-",
            display.num(b.runner_up.summary.median, b.unit),
            display.pct(b.margin_pct) + ("" if b.significant else " (n.s.)"),
            display.pct_interval(b.margin_low, b.margin_high),
            display.p_value(b.p_value),
        ]
        for b in best
    ]
    return header, rows


def change_rows(analyses: Sequence[SeriesAnalysis]) -> Table:
    header = ["series", "index", "commits", "when", "before", "after", "change", "95% CI", "p"]
    rows = [
        [
            a.series.label,
            str(c.change.index),
            display.commit_range(c.old_commit, c.new_commit),
            display.when(c.at),
            display.num(c.change.before_mean, a.series.unit),
            display.num(c.change.after_mean, a.series.unit),
            display.pct(c.change.pct_change),
            display.pct_interval(c.change.pct_low, c.change.pct_high),
            display.p_value(c.change.p_value),
        ]
        for a in analyses
        for c in a.changes
    ]
    return header, rows


def anomaly_rows(analyses: Sequence[SeriesAnalysis]) -> Table:
    header = ["series", "latest", "segment median", "spread", "robust z", "segment from"]
    rows = [
        [
            a.series.label,
            display.num(a.anomaly.value, a.series.unit),
            display.num(a.anomaly.median, a.series.unit),
            display.num(a.anomaly.spread),
            display.num(a.anomaly.z),
            str(a.segment_start),
        ]
        for a in analyses
        if a.anomaly is not None
    ]
    return header, rows


def forecast_rows(analyses: Sequence[SeriesAnalysis]) -> Table:
    header = ["series", "slope/point", "Kendall tau", "p", "trend", "next", "95% PI"]
    rows = []
    for a in analyses:
        f = a.forecast
        if f is None:
            continue
        nxt = f.points[0]
        rows.append(
            [
                a.series.label,
                display.num(f.slope, a.series.unit),
                f"{f.tau:+.2f}",
                display.p_value(f.p_value),
                "yes" if f.trend else "no",
                display.num(nxt.value, a.series.unit),
                f"[{display.num(nxt.low)}, {display.num(nxt.high)}]",
            ]
        )
    return header, rows


def _interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"[{display.num(low)}, {display.num(high)}]"
