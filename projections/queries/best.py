"""The best configuration of one metric, for `dtf best`. Pure functions over result rows.

A measurement's dimensions are its worker's hardware class (`hardware`) and the keys of its
metric's own dims (`model`, `config`, `batch`, ...). `--by` names the dimensions that make a
configuration; every other dimension splits the rankings, one per combination of its values,
so that only measurements taken under the same conditions compete (ranking hardware classes
across two models would compare the models). Without `--by`, every recorded dimension makes
the configuration and there is one ranking. A measurement without a value for a dimension
counts as `-` there.

The ranking itself (margins, test, "too thin") is `projections.analytics.ranking`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dtf.errors import ConfigError
from projections.analytics.ranking import Ranking, rank
from projections.analytics.stats import Direction
from projections.queries.read import Dims, ResultRow

HARDWARE = "hardware"
MISSING = "-"


@dataclass(frozen=True, slots=True)
class Group:
    """One ranking: the values of the dimensions it holds fixed, and its configurations,
    whose names are `dim=value,...` over the `by` dimensions (`configs` maps them back)."""

    fixed: Dims
    ranking: Ranking
    configs: dict[str, Dims]


@dataclass(frozen=True, slots=True)
class Best:
    """Every ranking of one metric."""

    metric: str
    unit: str
    direction: Direction
    by: tuple[str, ...]
    groups: tuple[Group, ...]


def dimensions(rows: Iterable[ResultRow]) -> list[str]:
    """The recorded dimensions of `rows`: `hardware` first when any has one, then dims keys."""
    rows = list(rows)
    keys = sorted({key for row in rows for key, _ in row.dims} - {HARDWARE})
    return ([HARDWARE] if any(row.hardware for row in rows) else []) + keys


def best(
    rows: Sequence[ResultRow],
    metric: str,
    *,
    by: Sequence[str] = (),
    direction: Direction | None = None,
    alpha: float,
    min_samples: int,
) -> Best:
    """Rank the configurations of `metric`; ConfigError for an unknown metric or dimension,
    or when the rows disagree on the direction and none is given."""
    measured = [row for row in rows if row.name == metric]
    if not measured:
        names = sorted({row.name for row in rows})
        known = ", ".join(names[:20]) if names else "none recorded"
        raise ConfigError(f"no results of metric {metric!r} (metrics: {known})")
    recorded = dimensions(measured)
    unknown = [d for d in by if d not in recorded]
    if unknown:
        raise ConfigError(
            f"--by {unknown[0]}: not a dimension of {metric} "
            f"(recorded: {', '.join(recorded) or 'none'})"
        )
    chosen = tuple(dict.fromkeys(by)) or tuple(recorded)
    others = [d for d in recorded if d not in chosen]
    if direction is None:
        directions = {row.direction for row in measured}
        if len(directions) > 1:
            raise ConfigError(
                f"{metric} is recorded as both lower- and higher-is-better; "
                "say which with --minimize or --maximize"
            )
        direction = "higher" if directions == {"higher"} else "lower"
    samples: dict[Dims, dict[Dims, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in measured:
        values = {**dict(row.dims), HARDWARE: row.hardware}
        config = tuple((d, values.get(d) or MISSING) for d in chosen)
        fixed = tuple((d, values.get(d) or MISSING) for d in others)
        samples[fixed][config].append(row.value)
    groups = []
    for fixed in sorted(samples):
        configs = {_name(config): config for config in samples[fixed]}
        by_name = {_name(config): values for config, values in samples[fixed].items()}
        ranking = rank(by_name, direction=direction, alpha=alpha, min_samples=min_samples)
        groups.append(Group(fixed, ranking, configs))
    units = sorted({row.unit for row in measured if row.unit})
    return Best(metric, "/".join(units), direction, chosen, tuple(groups))


def best_json(found: Best) -> dict[str, Any]:
    """The document of `dtf best --format json`."""
    return {
        "metric": found.metric,
        "unit": found.unit,
        "direction": found.direction,
        "by": list(found.by),
        "rankings": [_group_json(g) for g in found.groups],
    }


def _group_json(group: Group) -> dict[str, Any]:
    ranking = group.ranking
    return {
        "fixed": dict(group.fixed),
        "decided": ranking.decided,
        "reason": ranking.reason,
        "best": dict(group.configs[ranking.best.name]),
        "alpha": ranking.alpha,
        "min_samples": ranking.min_samples,
        "configurations": [
            {
                "config": dict(group.configs[e.name]),
                "samples": e.summary.count,
                "median": e.summary.median,
                "mean": e.summary.mean,
                "margin_pct": e.margin_pct,
                "margin_low": e.margin_low,
                "margin_high": e.margin_high,
                "p_value": e.p_value,
                "verdict": e.verdict,
            }
            for e in ranking.entries
        ],
    }


def _name(config: Dims) -> str:
    return ",".join(f"{d}={v}" for d, v in config)
