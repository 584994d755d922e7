"""Flakiness per test item: in how many of its runs it was flaky, and how.

A run is flaky for a test when the test
- passed only after failing in the same attempt (`--reruns`: its `rerun` rows), or
- failed or errored although it passed on the same commit in another run (the code was the
  same, the outcome was not); runs without a commit are judged alone.
The rate is flaky runs / runs in which it had a decisive outcome (passed, failed, error).
Pure functions over the rows of `projections.queries.read`.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from projections.queries.read import CaseRow
from projections.queries.summaries import DECISIVE, FAILING, RERUN


@dataclass(frozen=True, slots=True)
class FlakyTest:
    nodeid: str
    runs: int  # runs with a decisive outcome
    flaky_runs: int
    passed_after_rerun: int  # runs in which it passed only after failing
    failed_on_passing_commit: int  # runs in which it failed where the same commit passed
    last_flaky_at: float | None
    last_outcome: str

    @property
    def rate(self) -> float:
        return self.flaky_runs / self.runs if self.runs else 0.0


def flaky_tests(rows: Iterable[CaseRow], *, min_runs: int = 1) -> list[FlakyTest]:
    """The tests flaky in at least one run and seen in `min_runs` runs or more, flakiest
    first (rate, then flaky runs, then node id)."""
    by_test: dict[str, dict[str, list[CaseRow]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        by_test[row.nodeid][row.run_id].append(row)
    found = [
        t
        for nodeid, runs in by_test.items()
        if (t := _of(nodeid, runs)).flaky_runs and t.runs >= min_runs
    ]
    return sorted(found, key=lambda t: (-t.rate, -t.flaky_runs, t.nodeid))


def _of(nodeid: str, runs: dict[str, list[CaseRow]]) -> FlakyTest:
    passing_commits = {rows[0].commit for rows in runs.values() if rows[0].commit and _passed(rows)}
    decisive = after_rerun = on_passing = 0
    last_at: float | None = None
    last_outcome, last_seen = "", -1.0
    for rows in runs.values():
        outcomes = {r.outcome for r in rows}
        if not outcomes & DECISIVE:
            continue
        decisive += 1
        rerun_pass = RERUN in outcomes and "passed" in outcomes
        flipped = bool(outcomes & FAILING) and rows[0].commit in passing_commits
        after_rerun += rerun_pass
        on_passing += flipped and not rerun_pass
        at = max((r.at for r in rows if r.at is not None), default=None)
        if (rerun_pass or flipped) and at is not None and (last_at is None or at > last_at):
            last_at = at
        final = [r for r in rows if r.outcome != RERUN]
        if final and (at or 0.0) >= last_seen:
            last_outcome, last_seen = final[-1].outcome, at or 0.0
    return FlakyTest(
        nodeid, decisive, after_rerun + on_passing, after_rerun, on_passing, last_at, last_outcome
    )


def _passed(rows: list[CaseRow]) -> bool:
    return any(r.outcome == "passed" for r in rows)


def flaky_json(t: FlakyTest) -> dict[str, object]:
    return {
        "nodeid": t.nodeid,
        "rate": t.rate,
        "runs": t.runs,
        "flaky_runs": t.flaky_runs,
        "passed_after_rerun": t.passed_after_rerun,
        "failed_on_passing_commit": t.failed_on_passing_commit,
        "last_flaky_at": t.last_flaky_at,
        "last_outcome": t.last_outcome,
    }
