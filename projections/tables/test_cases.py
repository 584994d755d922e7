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

from events.catalogue import TaskCompleted, TaskFailed
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes

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
        rows: list[tuple] = []
        append = rows.append
        for f in batch.of(TaskCompleted, TaskFailed):
            event: TaskCompleted | TaskFailed = f.event  # type: ignore[assignment]
            if not event.cases:
                continue
            assert f.task is not None
            if isinstance(event, TaskFailed) and not f.task.state.terminal:
                continue  # the state the fold reached: the task goes on, see the docstring
            run_id = f.task.run_id
            worker_id = event.worker_id or f.task.state.worker_id or None
            commit = f.run.commit if f.run else None
            branch = f.run.branch if f.run else None
            task_id, attempt, at = event.task_id, event.attempt, event.at
            for c in event.cases:
                if c.reruns:  # rare: checked before building anything
                    rerun = (run_id, task_id, attempt, c.nodeid, "rerun", None, None)
                    rows.extend([(*rerun, worker_id, commit, branch, at)] * c.reruns)
                append(
                    (
                        run_id,
                        task_id,
                        attempt,
                        c.nodeid,
                        c.outcome,
                        c.duration,
                        c.message or None,
                        worker_id,
                        commit,
                        branch,
                        at,
                    )
                )
        writes.insert(TEST_CASES, rows)


PROJECTION = TestCases()
