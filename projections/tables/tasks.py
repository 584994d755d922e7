"""Tasks and their attempts: the current row of every task, and one row per attempt with
its worker, times and outcome."""

from __future__ import annotations

import duckdb

from events.catalogue import (
    OfTask,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskStarted,
)
from projections.bulk import insert, to_json
from projections.context import TaskEntry
from projections.projection import Batch

TASK_COLUMNS = (
    "task_id",
    "run_id",
    "kind",
    "command",
    "case_count",
    "priority",
    "timeout",
    "expected_duration",
    "requirements",
    "status",
    "worker_id",
    "attempt",
    "queued_at",
    "started_at",
    "finished_at",
    "category",
    "message",
)
ATTEMPT_COLUMNS = (
    "task_id",
    "attempt",
    "run_id",
    "worker_id",
    "term",
    "assigned_at",
    "started_at",
    "finished_at",
    "outcome",
    "category",
    "message",
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
    tables = ("tasks", "attempts")

    def apply(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
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
        # A task queued here is new to the table (the context knows every task id).
        insert(con, "tasks", TASK_COLUMNS, [task_row(e) for e in new.values()])
        insert(con, "tasks", TASK_COLUMNS, [task_row(e) for e in changed.values()], replace=True)
        rows = [attempt_row(e) for e in attempts.values()]
        insert(con, "attempts", ATTEMPT_COLUMNS, rows, replace=True)


PROJECTION = Tasks()
