"""Flakiness from test-case rows (`projections.queries.flaky`)."""

from __future__ import annotations

from projections.queries.flaky import flaky_tests
from projections.queries.read import CaseRow
from projections.queries.summaries import item_stats


def row(run: str, outcome: str, commit: str = "c1", nodeid: str = "t.py::a", at: float = 1.0):
    return CaseRow(run, nodeid, outcome, None, commit, "main", "w1", at)


def test_a_pass_after_reruns_is_flaky_without_any_other_run() -> None:
    rows = [row("r1", "rerun"), row("r1", "rerun"), row("r1", "passed"), row("r2", "passed")]
    (t,) = flaky_tests(rows)
    assert (t.runs, t.flaky_runs, t.passed_after_rerun, t.failed_on_passing_commit) == (2, 1, 1, 0)
    assert t.rate == 0.5 and t.last_outcome == "passed"
    # The summaries agree, and the rerun rows are not the test's last outcome.
    (stats,) = item_stats(rows)
    assert stats.flaky and stats.last_outcome == "passed" and stats.pass_rate == 1.0


def test_a_failure_where_the_same_commit_passed_is_flaky_and_a_new_commit_is_not() -> None:
    rows = [
        row("r1", "passed", "c1", at=1),
        row("r2", "failed", "c1", at=2),  # same code, other outcome
        row("r3", "failed", "c2", at=3),  # c2 never passed: a real failure
    ]
    (t,) = flaky_tests(rows)
    assert (t.runs, t.flaky_runs, t.failed_on_passing_commit) == (3, 1, 1)
    assert t.last_flaky_at == 2 and t.last_outcome == "failed"


def test_runs_without_a_commit_are_judged_alone_and_skips_do_not_count() -> None:
    rows = [row("r1", "passed", ""), row("r2", "failed", ""), row("r3", "skipped", "")]
    assert flaky_tests(rows) == []


def test_flakiest_first_and_min_runs() -> None:
    rows = [
        *(row(f"a{i}", "passed", nodeid="t.py::rare") for i in range(3)),
        row("a3", "rerun", nodeid="t.py::rare"),
        row("a3", "passed", nodeid="t.py::rare"),
        row("b1", "rerun", nodeid="t.py::often"),
        row("b1", "passed", nodeid="t.py::often"),
        row("b2", "passed", nodeid="t.py::often"),
    ]
    assert [t.nodeid for t in flaky_tests(rows)] == ["t.py::often", "t.py::rare"]
    assert [t.nodeid for t in flaky_tests(rows, min_runs=3)] == ["t.py::rare"]
