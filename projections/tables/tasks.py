"""Tasks and their attempts: the current row of every task, and one row per attempt with
its worker, times and outcome."""

from __future__ import annotations

import duckdb

from dtf.core.state import TERMINAL
from projections.pipeline.aggregates import Aggregates
from projections.pipeline.entries import TaskEntry
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, to_json

# tasks.command: the argv of a command task joined by spaces ("" for pytest tasks).
TASKS = Table(
    "tasks",
    (
        ("task_id", "VARCHAR"),
        ("run_id", "VARCHAR"),
        ("kind", "VARCHAR"),
        ("command", "VARCHAR"),
        ("case_count", "INTEGER"),
        ("priority", "INTEGER"),
        ("timeout", "DOUBLE"),
        ("expected_duration", "DOUBLE"),
        ("requirements", "JSON"),
        ("status", "VARCHAR"),
        ("worker_id", "VARCHAR"),
        ("attempt", "INTEGER"),
        ("queued_at", "DOUBLE"),
        ("started_at", "DOUBLE"),
        ("finished_at", "DOUBLE"),
        ("category", "VARCHAR"),
        ("message", "VARCHAR"),
    ),
    key=("task_id",),
)
# attempts.outcome: the TaskCompleted outcome, "error" for TaskFailed, "cancelled" for an
# attempt cancelled while running, NULL while running or when superseded by a reassignment.
ATTEMPTS = Table(
    "attempts",
    (
        ("task_id", "VARCHAR"),
        ("attempt", "INTEGER"),
        ("run_id", "VARCHAR"),
        ("worker_id", "VARCHAR"),
        ("term", "BIGINT"),
        ("assigned_at", "DOUBLE"),
        ("started_at", "DOUBLE"),
        ("finished_at", "DOUBLE"),
        ("outcome", "VARCHAR"),
        ("category", "VARCHAR"),
        ("message", "VARCHAR"),
    ),
    key=("task_id", "attempt"),
)


def task_row(entry: TaskEntry) -> tuple:
    s = entry.state
    spec = s.spec
    return (
        spec.task_id,
        spec.run_id,
        spec.kind,
        " ".join(spec.argv),
        entry.case_count,
        spec.priority,
        spec.timeout,
        spec.expected_duration,
        to_json(spec.requirements),
        s.status,
        s.worker_id or None,
        s.attempt,
        s.queued_at,
        s.started_at or None,
        s.finished_at or None,
        s.category or None,
        s.message or None,
    )


def attempt_row(entry: TaskEntry) -> tuple:
    s = entry.state
    ended = entry.outcome is not None
    return (
        s.spec.task_id,
        s.attempt,
        s.spec.run_id,
        s.worker_id or None,
        entry.term,
        s.assigned_at or None,
        entry.attempt_started,
        s.finished_at if ended else None,
        entry.outcome,
        (s.category or None) if entry.outcome == "error" else None,
        (s.message or None) if entry.outcome in ("error", "cancelled") else None,
    )


class Tasks:
    """Owns `tasks` and `attempts`."""

    name = "tasks"
    tables = (TASKS, ATTEMPTS)

    def apply(self, batch: Batch, writes: Writes) -> None:
        # A task queued in the batch is new to the table (the context knows every task id),
        # and so are its attempts: a plain INSERT costs half an INSERT OR REPLACE (5,700
        # attempts of a rebuild's batch: 10 against 21 ms).
        queued = batch.queued
        new: list[tuple] = []
        changed: list[tuple] = []
        for task_id, entry in batch.tasks.items():
            (new if task_id in queued else changed).append(task_row(entry))
        writes.insert(TASKS, new)
        writes.insert(TASKS, changed, replace=True)
        fresh: list[tuple] = []
        again: list[tuple] = []
        for (task_id, _), entry in batch.attempts.items():
            (fresh if task_id in queued else again).append(attempt_row(entry))
        writes.insert(ATTEMPTS, again, replace=True)
        writes.insert(ATTEMPTS, fresh)

    def restore(self, con: duckdb.DuckDBPyConnection, aggregates: Aggregates) -> None:
        # Terminal tasks are kept as ids only: no event changes them, but a second TaskQueued
        # for one must still be told apart from a new task.
        aggregates.settled = {
            row[0]
            for row in con.execute(
                "SELECT task_id FROM tasks WHERE status IN (SELECT unnest($1))", [sorted(TERMINAL)]
            ).fetchall()
        }


PROJECTION = Tasks()
