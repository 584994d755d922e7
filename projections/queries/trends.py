"""Change points of many series as one document, for `dtf trends`.

The JSON shape keeps its first keys (other tools read them) and only adds:
`{"<series>": {"change_points": [{"index", "before_mean", "after_mean", "pct_change",
"p_value", "pct_low", "pct_high", "index_low", "index_high"[, "commit", "commit_range"]},
...]}, ...}` where `index` is the 0-based first point of the new segment, `pct_low..pct_high`
the 95% interval of the size in percent, `index_low..index_high` the positions where the new
segment may begin, and, only for series read from the database, `commit` the commit of the
first point and `commit_range` `{"old", "new"}`: the change came with a commit after `old`,
up to and including `new`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dtf.errors import ConfigError
from projections.analytics.changepoint import ChangePoint
from projections.analytics.detectors import DEFAULT_DETECTOR, DETECTORS
from projections.queries.series import Series
from projections.queries.series_analysis import LocatedChange, changes_of


def of_values(
    series: Mapping[str, Sequence[float]], detector: str = DEFAULT_DETECTOR
) -> dict[str, list[ChangePoint]]:
    """Change points of each named series of plain values."""
    detect = DETECTORS[detector]
    found = {}
    for name, values in series.items():
        try:
            found[name] = detect(values)
        except ValueError as exc:
            raise ConfigError(f"series {name!r}: {exc}") from None
    return found


def of_series(
    series: Sequence[Series], detector: str = DEFAULT_DETECTOR
) -> dict[str, list[LocatedChange]]:
    """Change points of each database series, with the commits each falls between."""
    return {s.label: list(changes_of(s, detector)) for s in series}


def point_json(change: ChangePoint) -> dict[str, Any]:
    return {
        "index": change.index,
        "before_mean": change.before_mean,
        "after_mean": change.after_mean,
        "pct_change": change.pct_change,
        "p_value": change.p_value,
        "pct_low": change.pct_low,
        "pct_high": change.pct_high,
        "index_low": change.index_low,
        "index_high": change.index_high,
    }


def located_json(located: LocatedChange) -> dict[str, Any]:
    return {
        **point_json(located.change),
        "commit": located.commit,
        "commit_range": {"old": located.old_commit, "new": located.new_commit},
    }


def values_json(found: Mapping[str, Sequence[ChangePoint]]) -> dict[str, Any]:
    return {name: {"change_points": [point_json(c) for c in cps]} for name, cps in found.items()}


def series_json(found: Mapping[str, Sequence[LocatedChange]]) -> dict[str, Any]:
    return {name: {"change_points": [located_json(c) for c in cps]} for name, cps in found.items()}
