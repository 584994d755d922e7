"""Test cases: one row per test item per attempt, from the cases of TaskCompleted/TaskFailed,
except the attempts that failed while the task went on.

A TaskFailed that left the task retrying (or its speculative twin running) gets no rows: its
cases are mostly placeholders ("error" for every test a lost worker held, "not run" for those
after a crash), not outcomes of those tests, and the next attempt runs them all again;
counting them beside its passes listed every test of a lost worker as flaky.  A failure that
ends the task (attempts exhausted, a broken environment) keeps its rows: that error is what
the user sees as the tests' result.

A retried `timeout` is treated the same, though a test that hung once and passed on retry
is arguably flaky: the attempt's cases cannot tell the test that hung from those it kept from
running (the worker marks them "not run", the coordinator's backstop marks all of them
alike), so counting them would put the innocent ones on the flaky list too.  The hang stays
visible in `attempts` and `errors` (category timeout; when the worker timed it out, the test
that was running has its row there with the timeout's own message).

A test rerun inside its attempt (`--reruns`) has a row, outcome `rerun`, for each failed run
before its final outcome (no duration: those runs were not timed apart), as pytest-rerunfailures
names them: the flakiness history (`projections.queries.flaky`) counts a pass after reruns as
flaky, and pass rates, which count passed, failed and error only, stay those of final outcomes.
"""

from __future__ import annotations

import numpy as np

from events.catalogue import CaseResult, TaskCompleted, TaskFailed
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, repeated

# One row per test item per attempt, from TaskCompleted/TaskFailed cases; a TaskFailed after
# which the task goes on (retrying, or its speculative twin runs) has none.
TEST_CASES = Table(
    "test_cases",
    (
        ("run_id", "VARCHAR"),
        ("task_id", "VARCHAR"),
        ("attempt", "INTEGER"),
        ("nodeid", "VARCHAR"),
        ("outcome", "VARCHAR"),
        ("duration", "DOUBLE"),
        ("message", "VARCHAR"),
        ("worker_id", "VARCHAR"),
        ("commit", "VARCHAR"),
        ("branch", "VARCHAR"),
        ("finished_at", "DOUBLE"),
    ),
)


class TestCases:
    """Owns `test_cases` (append-only)."""

    __test__ = False  # not a pytest class, despite the name
    name = "test_cases"
    tables = (TEST_CASES,)

    def apply(self, batch: Batch, writes: Writes) -> None:
        # Built as columns: the values of an event's rows but its cases' own are repeated,
        # which numpy does for a third less time than a tuple per row would take.
        # (run_id, task_id, attempt, worker_id, commit, branch, at, its number of rows)
        attempts: list[tuple] = []
        cases: list[CaseResult] = []
        for f in batch.of(TaskCompleted, TaskFailed):
            event: TaskCompleted | TaskFailed = f.event  # type: ignore[assignment]
            if not event.cases:
                continue
            assert f.task is not None
            if isinstance(event, TaskFailed) and not f.task.state.terminal:
                continue  # the state the fold reached: the task goes on, see the docstring
            run = f.run
            attempts.append(
                (
                    f.task.run_id,
                    event.task_id,
                    event.attempt,
                    event.worker_id or f.task.state.worker_id or None,
                    run.commit if run else None,
                    run.branch if run else None,
                    event.at,
                    len(event.cases),
                )
            )
            cases += event.cases
        if not cases:
            return
        if any([c.reruns for c in cases]):  # rare: a row more for each failed run
            nodeids, outcomes, durations, messages = _with_reruns(cases, attempts)
        else:
            nodeids = [c.nodeid for c in cases]
            outcomes = [c.outcome for c in cases]
            durations = [c.duration for c in cases]
            messages = [c.message or None for c in cases]
        *values, counts = zip(*attempts, strict=True)
        times = np.array(counts)
        run_id, task_id, attempt, worker_id, commit, branch, at = (
            repeated(column, sql_type, times)
            for column, (_, sql_type) in zip(values, _PER_ATTEMPT, strict=True)
        )
        writes.insert_columns(
            TEST_CASES,
            [
                run_id,
                task_id,
                attempt,
                nodeids,
                outcomes,
                durations,
                messages,
                worker_id,
                commit,
                branch,
                at,
            ],
        )


def _with_reruns(cases: list[CaseResult], attempts: list[tuple]) -> tuple[list, ...]:
    """The per-case columns with a `rerun` row (no duration, no message) before a case's own
    for each of its failed runs; each attempt's count of rows (its last field) grows to match."""
    nodeids: list[str] = []
    outcomes: list[str] = []
    durations: list[float | None] = []
    messages: list[str | None] = []
    start = 0
    for i, a in enumerate(attempts):
        count = a[-1]
        rows = 0
        for c in cases[start : start + count]:
            n = c.reruns + 1
            nodeids += [c.nodeid] * n
            outcomes += ["rerun"] * c.reruns + [c.outcome]
            durations += [None] * c.reruns + [c.duration]
            messages += [None] * c.reruns + [c.message or None]
            rows += n
        attempts[i] = (*a[:-1], rows)
        start += count
    return nodeids, outcomes, durations, messages


# The columns whose value is the attempt's, repeated over its cases' rows.
_PER_ATTEMPT = tuple(
    c for c in TEST_CASES.columns if c[0] not in ("nodeid", "outcome", "duration", "message")
)


PROJECTION = TestCases()
