"""Summaries per test item and per benchmark metric, and the best configuration of each
benchmark. Pure functions over the rows of `projections.queries.read`.

- A test item is flaky when it both passed and failed (or errored) on the same commit; rows
  without a commit count per run instead, since runs without a commit may differ in code.
- The pass rate is passed / (passed + failed + error); skips and xfails do not count.
- A benchmark is a metric with its dims; its configurations are the hardware classes it ran
  on. The best one has the best median for the metric's direction; its margin over the
  runner-up is the Hodges-Lehmann shift in percent, tested with Mann-Whitney over the latest
  `MAX_COMPARED` values of each.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from projections.analytics.stats import Summary, compare_samples, summarize
from projections.queries.read import CaseRow
from projections.queries.series import Series

FAILING = frozenset({"failed", "error"})
DECISIVE = FAILING | {"passed"}
# The comparison of two configurations materialises all pairwise differences; the latest
# values are also the ones that say which is best now.
MAX_COMPARED = 2000


@dataclass(frozen=True, slots=True)
class ItemStats:
    """One test item: outcome counts, pass rate, duration statistics and history.

    `history` holds the durations of all attempts that report one, in time order;
    `flaky_commits` the commits (or run ids) on which the item both passed and failed.
    """

    nodeid: str
    count: int
    outcomes: dict[str, int]
    pass_rate: float | None
    last_outcome: str
    duration: Summary | None
    history: tuple[float, ...]
    flaky_commits: tuple[str, ...]

    @property
    def flaky(self) -> bool:
        return bool(self.flaky_commits)

    @property
    def failures(self) -> int:
        return sum(self.outcomes.get(o, 0) for o in FAILING)


@dataclass(frozen=True, slots=True)
class MetricStats:
    """One metric x dims x hardware series and its summary."""

    series: Series
    summary: Summary


@dataclass(frozen=True, slots=True)
class Configuration:
    """One hardware class of a benchmark with the summary of its values."""

    hardware: str
    summary: Summary


@dataclass(frozen=True, slots=True)
class BestConfiguration:
    """The best hardware class of a benchmark and its margin over the runner-up.

    `margin_pct` (and its interval) is how much better the best is, in percent of the
    runner-up's median, positive meaning better whichever the direction; None when that
    median is 0. `configurations` lists all classes, best first.
    """

    benchmark: str
    unit: str
    direction: str
    best: Configuration
    runner_up: Configuration
    margin_pct: float | None
    margin_low: float | None
    margin_high: float | None
    p_value: float
    significant: bool
    configurations: tuple[Configuration, ...]


def item_stats(rows: Iterable[CaseRow]) -> list[ItemStats]:
    """Statistics per test item, sorted by nodeid."""
    grouped: dict[str, list[CaseRow]] = defaultdict(list)
    for row in rows:
        grouped[row.nodeid].append(row)
    return [_item(nodeid, items) for nodeid, items in sorted(grouped.items())]


def _item(nodeid: str, rows: Sequence[CaseRow]) -> ItemStats:
    outcomes = Counter(row.outcome for row in rows)
    decisive = sum(outcomes[o] for o in DECISIVE)
    history = tuple(float(row.duration) for row in rows if row.duration is not None)
    seen: dict[str, set[str]] = defaultdict(set)
    for row in rows:
        seen[row.commit or f"run {row.run_id}"].add(row.outcome)
    flaky = tuple(
        sorted(code for code, found in seen.items() if "passed" in found and found & FAILING)
    )
    return ItemStats(
        nodeid=nodeid,
        count=len(rows),
        outcomes=dict(sorted(outcomes.items())),
        pass_rate=outcomes["passed"] / decisive if decisive else None,
        last_outcome=rows[-1].outcome,
        duration=summarize(history) if history else None,
        history=history,
        flaky_commits=flaky,
    )


def metric_stats(series: Iterable[Series]) -> list[MetricStats]:
    """A summary per series, in the order given."""
    return [MetricStats(s, summarize(s.values)) for s in series if s.values]


def best_configurations(
    series: Iterable[Series], *, alpha: float = 0.05
) -> list[BestConfiguration]:
    """The best hardware class of every benchmark measured on at least two, by benchmark."""
    by_benchmark: dict[str, list[Series]] = defaultdict(list)
    for s in series:
        if s.key is not None and s.values:
            by_benchmark[f"{s.key.benchmark}\0{s.unit}\0{s.direction}"].append(s)
    found = []
    for group in by_benchmark.values():
        if len(group) >= 2:
            found.append(_best_of(group, alpha))
    return sorted(found, key=lambda b: b.benchmark)


def _best_of(group: Sequence[Series], alpha: float) -> BestConfiguration:
    higher = group[0].direction == "higher"
    summaries = {s.label: summarize(s.values) for s in group}
    ranked = sorted(group, key=lambda s: summaries[s.label].median, reverse=higher)
    best, runner_up = ranked[0], ranked[1]
    comparison = compare_samples(
        runner_up.values[-MAX_COMPARED:],
        best.values[-MAX_COMPARED:],
        direction="higher" if higher else "lower",
    )
    # compare_samples gives candidate - baseline; "better" is that sign for higher-is-better
    # and the opposite for lower-is-better.
    sign = 1.0 if higher else -1.0
    low = high = None
    if comparison.pct_low is not None and comparison.pct_high is not None:
        low, high = sorted((sign * comparison.pct_low, sign * comparison.pct_high))
    configurations = tuple(
        Configuration(s.key.hardware if s.key else "", summaries[s.label]) for s in ranked
    )
    return BestConfiguration(
        benchmark=best.key.benchmark if best.key else best.label,
        unit=best.unit,
        direction=best.direction,
        best=configurations[0],
        runner_up=configurations[1],
        margin_pct=None if comparison.pct_change is None else sign * comparison.pct_change,
        margin_low=low,
        margin_high=high,
        p_value=comparison.p_value,
        significant=comparison.p_value < alpha,
        configurations=configurations,
    )
