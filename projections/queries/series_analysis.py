"""What the history of one series says: its change points with the commits they fall
between, whether its latest value is an anomaly against its current segment, and a forecast
of its next values.

Change points come from a detector of `projections.analytics.detectors`, `steps` unless told
otherwise. A change's commit range is read off its location interval
(`ChangePoint.index_low..index_high`): the commit of the point just before the interval is
the last one measured at the old level, the commit of the interval's last point the first one
surely at the new level, so the change came with a commit in `old..new` (git's range: after
`old`, up to and including `new`).

The current segment is the part after the last change point (the whole series when there is
none). The latest value is judged against the segment's earlier values with the robust
z-score, and the forecast fits a Theil-Sen line to the segment (its last `MAX_FORECAST_POINTS`
values), so a step in the past does not pass for a trend.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from projections.analytics.changepoint import ChangePoint
from projections.analytics.detectors import DEFAULT_DETECTOR, DETECTORS
from projections.analytics.stats import Anomaly, Forecast, forecast, robust_anomaly
from projections.queries.series import Series

# Fewer points than this make a median/MAD or a slope too unstable to report on.
MIN_REFERENCE = 5
# Theil-Sen takes all pairwise slopes (memory O(n^2)); the recent past is what predicts.
MAX_FORECAST_POINTS = 500
DEFAULT_Z_THRESHOLD = 3.5
DEFAULT_HORIZON = 3


@dataclass(frozen=True, slots=True)
class LocatedChange:
    """A change point with the commit and time of the first point of the new segment, and
    the range of commits it falls in: after `old_commit`, up to and including `new_commit`.
    Commits are empty strings where the points carry none."""

    change: ChangePoint
    commit: str
    at: float | None
    old_commit: str
    new_commit: str


@dataclass(frozen=True, slots=True)
class SeriesAnalysis:
    """Change points, anomaly of the latest value and forecast of one series.

    `segment_start` is the index where the current segment begins; the forecast's intercept
    and point indices are in positions of the whole series. `anomaly` and `forecast` are None
    for short segments.
    """

    series: Series
    changes: tuple[LocatedChange, ...]
    segment_start: int
    anomaly: Anomaly | None
    forecast: Forecast | None


def locate(series: Series, changes: Iterable[ChangePoint]) -> tuple[LocatedChange, ...]:
    """Attach the commit and time of each change's first new point and its commit range."""
    return tuple(
        LocatedChange(
            change=c,
            commit=series.commits[c.index],
            at=series.times[c.index],
            old_commit=series.commits[max(c.index_low - 1, 0)],
            new_commit=series.commits[c.index_high],
        )
        for c in changes
    )


def changes_of(series: Series, detector: str = DEFAULT_DETECTOR) -> tuple[LocatedChange, ...]:
    """The located change points of `series` by the detector named `detector`."""
    return locate(series, DETECTORS[detector](series.values))


def analyse(
    series: Series,
    *,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
    horizon: int = DEFAULT_HORIZON,
    detector: str = DEFAULT_DETECTOR,
) -> SeriesAnalysis:
    """Detect changes in `series`, then judge its latest value and forecast its segment."""
    changes = changes_of(series, detector)
    start = changes[-1].change.index if changes else 0
    segment = series.values[start:]
    anomaly = None
    if len(segment) > MIN_REFERENCE:
        anomaly = robust_anomaly(segment[-1], segment[:-1], threshold=z_threshold)
    trend = None
    if len(segment) >= MIN_REFERENCE:
        recent = segment[-MAX_FORECAST_POINTS:]
        trend = _shifted(forecast(recent, horizon), len(series.values) - len(recent))
    return SeriesAnalysis(series, changes, start, anomaly, trend)


def analyse_all(
    series: Sequence[Series],
    *,
    z_threshold: float = DEFAULT_Z_THRESHOLD,
    horizon: int = DEFAULT_HORIZON,
    detector: str = DEFAULT_DETECTOR,
) -> list[SeriesAnalysis]:
    return [
        analyse(s, z_threshold=z_threshold, horizon=horizon, detector=detector)
        for s in series
        if s.values
    ]


def _shifted(result: Forecast, start: int) -> Forecast:
    """The forecast of a segment with its points indexed in the whole series."""
    points = tuple(replace(p, index=p.index + start) for p in result.points)
    return replace(result, intercept=result.intercept - result.slope * start, points=points)
