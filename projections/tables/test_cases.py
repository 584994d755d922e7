"""Test cases: one row per test item per attempt, from the cases of TaskCompleted/TaskFailed."""

from __future__ import annotations

import duckdb

from events.catalogue import TaskCompleted, TaskFailed
from projections.bulk import insert
from projections.projection import Batch

COLUMNS = (
    "run_id",
    "task_id",
    "attempt",
    "nodeid",
    "outcome",
    "duration",
    "message",
    "worker_id",
    "commit",
    "branch",
    "finished_at",
)


class TestCases:
    """Owns `test_cases` (append-only)."""

    __test__ = False  # not a pytest class, despite the name
    name = "test_cases"
    tables = ("test_cases",)

    def apply(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
        rows: list[tuple] = []
        append = rows.append
        for f in batch.of(TaskCompleted, TaskFailed):
            event: TaskCompleted | TaskFailed = f.event  # type: ignore[assignment]
            if not event.cases:
                continue
            assert f.task is not None
            run_id = f.task.run_id
            worker_id = event.worker_id or f.task.state.worker_id or None
            commit = f.run.commit if f.run else None
            branch = f.run.branch if f.run else None
            for c in event.cases:
                append(
                    (
                        run_id,
                        event.task_id,
                        event.attempt,
                        c.nodeid,
                        c.outcome,
                        c.duration,
                        c.message or None,
                        worker_id,
                        commit,
                        branch,
                        event.at,
                    )
                )
        insert(con, "test_cases", COLUMNS, rows)


PROJECTION = TestCases()
