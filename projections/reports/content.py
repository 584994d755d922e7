"""The content of `dtf report`, gathered once and written by `report_md`, `report_json` and
`report_html`: test health (flaky, failing, slowest), benchmark summaries, the best hardware
per benchmark, and each series' change points, latest-value anomaly and forecast.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from projections.queries.read import CaseRow, ResultRow, RunRow
from projections.queries.series import duration_series, metric_series
from projections.queries.series_analysis import (
    DEFAULT_HORIZON,
    DEFAULT_Z_THRESHOLD,
    SeriesAnalysis,
    analyse_all,
)
from projections.queries.summaries import (
    FAILING,
    BestConfiguration,
    ItemStats,
    MetricStats,
    best_configurations,
    item_stats,
    metric_stats,
)

DEFAULT_TOP = 10
# A test's durations are analysed over time only with this much history; shorter ones are noise.
MIN_DURATION_HISTORY = 10


@dataclass(frozen=True, slots=True)
class Report:
    """Everything a report shows; `since` is the epoch lower bound of its data (None: all)."""

    database: str
    generated_at: float
    since: float | None
    runs: int
    tests: tuple[ItemStats, ...]
    flaky: tuple[ItemStats, ...]
    failing: tuple[ItemStats, ...]
    slowest: tuple[ItemStats, ...]
    benchmarks: tuple[MetricStats, ...]
    best: tuple[BestConfiguration, ...]
    analyses: tuple[SeriesAnalysis, ...]
    z_threshold: float

    @property
    def changes(self) -> tuple[SeriesAnalysis, ...]:
        return tuple(a for a in self.analyses if a.changes)

    @property
    def anomalies(self) -> tuple[SeriesAnalysis, ...]:
        return tuple(a for a in self.analyses if a.anomaly is not None and a.anomaly.anomalous)

    @property
    def forecasts(self) -> tuple[SeriesAnalysis, ...]:
        return tuple(a for a in self.analyses if a.forecast is not None)


def build(
    runs: Sequence[RunRow],
    cases: Sequence[CaseRow],
    results: Sequence[ResultRow],
    *,
    database: str,
    generated_at: float,
    since: float | None = None,
    top: int = DEFAULT_TOP,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
    horizon: int = DEFAULT_HORIZON,
) -> Report:
    """The report over rows already limited to the period (runs are counted from `since`)."""
    tests = item_stats(cases)
    timed = [t for t in tests if t.duration is not None]
    metrics = metric_series(results)
    durations = duration_series(cases, min_points=MIN_DURATION_HISTORY)
    counted = [r for r in runs if since is None or (r.submitted_at or 0.0) >= since]
    return Report(
        database=database,
        generated_at=generated_at,
        since=since,
        runs=len(counted),
        tests=tuple(tests),
        flaky=tuple(
            sorted(
                (t for t in tests if t.flaky),
                key=lambda t: (-len(t.flaky_commits), t.pass_rate or 0.0, t.nodeid),
            )
        ),
        failing=tuple(
            sorted(
                (t for t in tests if t.last_outcome in FAILING),
                key=lambda t: (-t.failures, t.nodeid),
            )
        ),
        slowest=tuple(
            sorted(timed, key=lambda t: (-(t.duration.mean if t.duration else 0.0), t.nodeid))[:top]
        ),
        benchmarks=tuple(metric_stats(metrics)),
        best=tuple(best_configurations(metrics)),
        analyses=tuple(
            analyse_all([*metrics, *durations], z_threshold=z_threshold, horizon=horizon)
        ),
        z_threshold=z_threshold,
    )
