"""Change points of many series as one document, for `dtf trends`.

The JSON shape is fixed (other tools read it):
`{"<series>": {"change_points": [{"index", "before_mean", "after_mean", "pct_change",
"p_value"[, "commit"]}, ...]}, ...}` where `index` is the 0-based first point of the new
segment and `commit` is present only for series read from the database.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from dtf.errors import ConfigError
from projections.analytics.changepoint import ChangePoint, detect
from projections.queries.series import Series
from projections.queries.series_analysis import LocatedChange, locate


def of_values(series: Mapping[str, Sequence[float]]) -> dict[str, list[ChangePoint]]:
    """Change points of each named series of plain values."""
    found = {}
    for name, values in series.items():
        try:
            found[name] = detect(values)
        except ValueError as exc:
            raise ConfigError(f"series {name!r}: {exc}") from None
    return found


def of_series(series: Sequence[Series]) -> dict[str, list[LocatedChange]]:
    """Change points of each database series, with the commit where each begins."""
    return {s.label: list(locate(s, detect(s.values))) for s in series}


def point_json(change: ChangePoint, commit: str | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "index": change.index,
        "before_mean": change.before_mean,
        "after_mean": change.after_mean,
        "pct_change": change.pct_change,
        "p_value": change.p_value,
    }
    if commit is not None:
        entry["commit"] = commit
    return entry


def values_json(found: Mapping[str, Sequence[ChangePoint]]) -> dict[str, Any]:
    return {name: {"change_points": [point_json(c) for c in cps]} for name, cps in found.items()}


def series_json(found: Mapping[str, Sequence[LocatedChange]]) -> dict[str, Any]:
    return {
        name: {"change_points": [point_json(c.change, c.commit) for c in cps]}
        for name, cps in found.items()
    }
