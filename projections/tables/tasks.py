"""Tasks and their attempts: the current row of every task, and one row per attempt with
its worker, times and outcome."""

from __future__ import annotations

import duckdb

from dtf.core.state import TERMINAL
from events.catalogue import (
    OfTask,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskStarted,
)
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
# Events that begin, advance or end an attempt; others (a retry being scheduled) leave the
# attempt's row as its end left it.
ATTEMPT_EVENTS = (TaskAssigned, TaskStarted, TaskCompleted, TaskFailed)


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
        new: dict[str, TaskEntry] = {}
        changed: dict[str, TaskEntry] = {}
        attempts: dict[tuple[str, int], TaskEntry] = {}  # the entry after its last event
        for f in batch.accepted("task"):
            entry = f.task
            if entry is None:
                continue
            event = f.event
            assert isinstance(event, OfTask)
            task_id = event.task_id
            if task_id in new or isinstance(event, TaskQueued):
                new[task_id] = entry
            else:
                changed[task_id] = entry
            if isinstance(event, ATTEMPT_EVENTS) or (
                isinstance(event, TaskCancelled) and entry.outcome == "cancelled"
            ):
                attempts[(task_id, entry.state.attempt)] = entry
        # A task queued here is new to the table (the context knows every task id), and so
        # are its attempts: a plain INSERT costs half an INSERT OR REPLACE (5,700 attempts of
        # a rebuild's batch: 10 against 21 ms).
        writes.insert(TASKS, [task_row(e) for e in new.values()])
        writes.insert(TASKS, [task_row(e) for e in changed.values()], replace=True)
        rows = [attempt_row(e) for (t, _), e in attempts.items() if t not in new]
        writes.insert(ATTEMPTS, rows, replace=True)
        fresh = [attempt_row(e) for (t, _), e in attempts.items() if t in new]
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
