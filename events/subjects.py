"""Subject scheme: one prefix per aggregate, so permissions and filters are a few wildcards.

    dtf.evt.run.<run_id>.<event>
    dtf.evt.task.<run_id>.<n>.<event>[.<worker_id>]     task ids are "<run_id>.<n>"
    dtf.evt.worker.<worker_id>.<event>
    dtf.log.<run_id>.<n>                                 task output (DTF_LOGS stream)
    dtf.progress.<run_id>.<n>                            a test's result as it happens (not stored)

A task id holds its run id as its first token, so a client follows one run with
`dtf.evt.task.<run_id>.>` and a worker receives only its assignments with
`dtf.evt.task.*.*.assigned.<worker_id>`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from events.catalogue import (
    AnyEvent,
    OfTask,
    OfWorker,
    RunCancelRequested,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCheckpointed,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskResultSuperseded,
    TaskRetryScheduled,
    TaskSpeculated,
    TaskStarted,
    WorkerDisabled,
    WorkerDraining,
    WorkerDrainRequested,
    WorkerEnabled,
    WorkerLost,
    WorkerQuarantined,
    WorkerRegistered,
    WorkerStopped,
)

ROOT = "dtf.evt"
LOG_ROOT = "dtf.log"
PROGRESS_ROOT = "dtf.progress"
_TOKEN = re.compile(r"^[A-Za-z0-9_-]+$")


def valid_token(value: str) -> bool:
    return bool(_TOKEN.match(value))


def task_id(run_id: str, n: int) -> str:
    return f"{run_id}.{n}"


def run_of(task_id: str) -> str:
    return task_id.split(".", 1)[0]


def valid_task_id(value: str) -> bool:
    parts = value.split(".")
    return len(parts) == 2 and all(valid_token(p) for p in parts)


def run_subject(run_id: str, event: str = ">") -> str:
    return f"{ROOT}.run.{run_id}.{event}"


def task_subject(task_id: str, event: str = ">") -> str:
    return f"{ROOT}.task.{task_id}.{event}"


def worker_subject(worker_id: str, event: str = ">") -> str:
    return f"{ROOT}.worker.{worker_id}.{event}"


def assignments_for(worker_id: str) -> str:
    """What one worker's durable consumer filters on: its own assignments only."""
    return f"{ROOT}.task.*.*.assigned.{worker_id}"


def run_tasks(run_id: str) -> str:
    return f"{ROOT}.task.{run_id}.>"


def log_subject(task_id: str) -> str:
    return f"{LOG_ROOT}.{task_id}"


def progress_subject(task_id: str) -> str:
    return f"{PROGRESS_ROOT}.{task_id}"


def run_progress(run_id: str) -> str:
    return f"{PROGRESS_ROOT}.{run_id}.>"


def aggregate_filter(event: AnyEvent) -> str:
    """The wildcard covering the event's whole aggregate (for expected-sequence checks)."""
    suffixed = isinstance(event, TaskAssigned | TaskSpeculated)  # ...assigned.<worker>
    return subject_of(event).rsplit(".", 2 if suffixed else 1)[0] + ".>"


# Tokens before the `>` of each aggregate's guard filter (`aggregate_filter`).
_AGGREGATE_DEPTH = {"run": 4, "worker": 4, "task": 5}


def aggregate_of(subject: str) -> str | None:
    """The aggregate whose guard filter covers `subject` ('task:r1.3'), or None for none.

    Read from the subject alone, so that a message which does not decode still counts for the
    aggregate the server counts it for: `dtf.evt.task.r1.3.>` matches any deeper subject.
    """
    tokens = subject.split(".")
    if len(tokens) < 5 or tokens[0] != "dtf" or tokens[1] != "evt":
        return None
    depth = _AGGREGATE_DEPTH.get(tokens[2])
    if depth is None or len(tokens) <= depth:
        return None
    return f"{tokens[2]}:{'.'.join(tokens[3:depth])}"


# The last token(s) of each event's subject; assignments add the worker's id after theirs.
_SUFFIX: dict[type, str] = {
    RunSubmitted: "submitted",
    RunCancelRequested: "cancel_requested",
    RunFinished: "finished",
    TaskQueued: "queued",
    TaskAssigned: "assigned",
    TaskSpeculated: "assigned",
    TaskStarted: "started",
    TaskCompleted: "completed",
    TaskFailed: "failed",
    TaskCancelled: "cancelled",
    TaskRetryScheduled: "retry_scheduled",
    TaskCheckpointed: "checkpointed",
    TaskResultSuperseded: "superseded",
    WorkerRegistered: "registered",
    WorkerDraining: "draining",
    WorkerStopped: "stopped",
    WorkerLost: "lost",
    WorkerQuarantined: "quarantined",
    WorkerEnabled: "enabled",
    WorkerDisabled: "disabled",
    WorkerDrainRequested: "drain_requested",
}


def subject_of(event: AnyEvent) -> str:
    """The subject an event is stored under (a table lookup: every reader checks it)."""
    subject = _SUBJECT.get(type(event))
    if subject is None:
        raise TypeError(f"not an event: {event!r}")
    return subject(event)


def _subject_maker(cls: type, suffix: str) -> Callable[[Any], str]:
    """The function giving an event of `cls` its subject: one dict lookup and one f-string
    per event, since every reader of the stream checks every event's subject."""
    if cls in (TaskAssigned, TaskSpeculated):
        return lambda e: f"{ROOT}.task.{e.task_id}.{suffix}.{e.worker_id}"
    if issubclass(cls, OfTask):
        return lambda e: f"{ROOT}.task.{e.task_id}.{suffix}"
    if issubclass(cls, OfWorker):
        return lambda e: f"{ROOT}.worker.{e.worker_id}.{suffix}"
    return lambda e: f"{ROOT}.run.{e.run_id}.{suffix}"


_SUBJECT = {cls: _subject_maker(cls, suffix) for cls, suffix in _SUFFIX.items()}
