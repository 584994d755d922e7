"""Summaries per test item and per benchmark metric, and the best configuration of each
benchmark. Pure functions over the rows of `projections.queries.read`.

- A test item is flaky when it both passed and failed (or errored, or needed a rerun) on the
  same commit; rows without a commit count per run instead, since runs without a commit may
  differ in code.
- The pass rate is passed / (passed + failed + error); skips and xfails do not count.
- A benchmark is a metric with its dims; its configurations are the hardware classes it ran
  on, ranked by `projections.analytics.ranking` (`dtf best` ranks across every dimension).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from projections.analytics.ranking import rank
from projections.analytics.stats import Direction, Summary, summarize
from projections.queries.read import CaseRow
from projections.queries.series import Series

FAILING = frozenset({"failed", "error"})
DECISIVE = FAILING | {"passed"}
RERUN = "rerun"  # a failed run before a rerun (`projections.tables.test_cases`)
UNSTABLE = FAILING | {RERUN}


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
        sorted(code for code, found in seen.items() if "passed" in found and found & UNSTABLE)
    )
    final = [row for row in rows if row.outcome != RERUN]  # a rerun row is never the last word
    return ItemStats(
        nodeid=nodeid,
        count=len(rows),
        outcomes=dict(sorted(outcomes.items())),
        pass_rate=outcomes["passed"] / decisive if decisive else None,
        last_outcome=(final or rows)[-1].outcome,
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
    direction: Direction = "higher" if group[0].direction == "higher" else "lower"
    # Within one benchmark the series differ only in their hardware class.
    ranking = rank(
        {s.key.hardware if s.key else s.label: s.values for s in group},
        direction=direction,
        alpha=alpha,
        min_samples=1,
    )
    configurations = tuple(Configuration(e.name, e.summary) for e in ranking.entries)
    best = ranking.best
    assert best.p_value is not None  # a group has two series at least
    return BestConfiguration(
        benchmark=group[0].key.benchmark if group[0].key else group[0].label,
        unit=group[0].unit,
        direction=direction,
        best=configurations[0],
        runner_up=configurations[1],
        margin_pct=best.margin_pct,
        margin_low=best.margin_low,
        margin_high=best.margin_high,
        p_value=best.p_value,
        significant=best.verdict == "significant",
        configurations=configurations,
    )
