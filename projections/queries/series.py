"""Time-ordered series of measurements: one per metric x dims x hardware, and one per test
item's duration. Pure functions over the rows of `projections.queries.read`.

A series' label names it everywhere (trends JSON, regressions, reports):
`name[key=value,...]@hardware` for a metric (the brackets and `@` only when there are dims or
a hardware class), `duration:<nodeid>` for a test item's duration.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from projections.queries.read import CaseRow, Dims, ResultRow

DURATION_PREFIX = "duration:"
# Outcomes whose duration measures the test's work; a failure stops early, a skip does nothing.
TIMED_OUTCOMES = frozenset({"passed"})


@dataclass(frozen=True, slots=True, order=True)
class MetricKey:
    """What makes measurements comparable: the metric, its dims and the hardware class."""

    name: str
    unit: str
    direction: str
    dims: Dims
    hardware: str

    @property
    def label(self) -> str:
        return metric_label(self.name, self.dims, self.hardware)

    @property
    def benchmark(self) -> str:
        """The label without the hardware class: what configurations compete on."""
        return metric_label(self.name, self.dims, "")


@dataclass(frozen=True, slots=True)
class Series:
    """Values in time order with the commit and time of each point."""

    label: str
    unit: str
    direction: str
    values: tuple[float, ...]
    commits: tuple[str, ...]
    times: tuple[float | None, ...]
    key: MetricKey | None = None  # None for test durations

    @property
    def metric(self) -> str:
        """The metric name (`duration` for a test item's duration)."""
        return self.key.name if self.key else "duration"


def metric_label(name: str, dims: Dims, hardware: str) -> str:
    """`name[k=v,...]@hardware`, leaving out empty parts."""
    label = name
    if dims:
        label += "[" + ",".join(f"{k}={v}" for k, v in dims) + "]"
    if hardware:
        label += f"@{hardware}"
    return label


def duration_label(nodeid: str) -> str:
    return f"{DURATION_PREFIX}{nodeid}"


def metric_key(row: ResultRow) -> MetricKey:
    return MetricKey(row.name, row.unit, row.direction, row.dims, row.hardware)


def metric_series(rows: Iterable[ResultRow]) -> list[Series]:
    """One series per metric key, points in the order given (time order), sorted by label."""
    grouped: dict[MetricKey, list[ResultRow]] = defaultdict(list)
    for row in rows:
        grouped[metric_key(row)].append(row)
    return sorted(
        (
            Series(
                label=key.label,
                unit=key.unit,
                direction=key.direction,
                values=tuple(r.value for r in points),
                commits=tuple(r.commit for r in points),
                times=tuple(r.at for r in points),
                key=key,
            )
            for key, points in grouped.items()
        ),
        key=lambda s: s.label,
    )


def duration_series(rows: Iterable[CaseRow], *, min_points: int = 1) -> list[Series]:
    """One series of passed durations per test item with at least `min_points` points."""
    grouped: dict[str, list[CaseRow]] = defaultdict(list)
    for row in rows:
        if row.outcome in TIMED_OUTCOMES and row.duration is not None:
            grouped[row.nodeid].append(row)
    return [
        Series(
            label=duration_label(nodeid),
            unit="s",
            direction="lower",
            values=tuple(float(r.duration or 0.0) for r in points),
            commits=tuple(r.commit for r in points),
            times=tuple(r.at for r in points),
        )
        for nodeid, points in sorted(grouped.items())
        if len(points) >= min_points
    ]


def select(series: Sequence[Series], metric: str | None) -> list[Series]:
    """The series of metric `metric` (or with that exact label); all when None."""
    if metric is None:
        return list(series)
    return [s for s in series if metric in (s.metric, s.label)]
