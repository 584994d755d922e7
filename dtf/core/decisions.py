"""The coordinator's rules, as pure functions of the View: each returns the events to write.

Retries, quarantine, health checks, cancellations, assignments, speculative attempts, lost
workers, backstop timeouts and finished runs are all decided here, from a `View` and a
`Stamp` (the time, who decides under which lease term, fresh ids and random draws), so each
rule is tested with plain values and a recorded log can be replayed through them.

The coordinator calls the rules of a round in `ROUND` order and appends each event with its
aggregate's guard, folding it into the View at once: a later rule sees what an earlier one
decided (a retry scheduled makes a queued task that the assignment rule may place).  A rule
never writes, sleeps or reads a clock; it may return nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from dtf.core import retry
from dtf.core.scheduling import Strategy, WorkerSlots, free_workers, index_of
from dtf.core.scheduling.protocol import capable
from dtf.core.state import View
from events.catalogue import (
    AnyEvent,
    CaseResult,
    RunFinished,
    TaskAssigned,
    TaskCancelled,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskSpeculated,
    WorkerEnabled,
    WorkerLost,
    WorkerQuarantined,
)

# A running task silent this long past its own timeout is declared lost by the coordinator
# (the worker enforces the timeout itself; this is the backstop for a wedged worker).
BACKSTOP_GRACE_S = 30.0
# A running task is a straggler past STRAGGLER_FACTOR x its expected duration, and never
# before `straggler_after` seconds (expected durations of unknown tests are guesses).
STRAGGLER_FACTOR = 4.0
STRAGGLER_AFTER_S = 10.0
HEALTH_TIMEOUT_S = 60.0

E = TypeVar("E")


@dataclass(frozen=True)
class Stamp:
    """What a decision takes from outside the core: the time (`now`, epoch seconds), the
    deciding coordinator and its lease term, a source of fresh event ids, and a source of
    uniform random draws in [0, 1) (retry jitter)."""

    now: float
    actor: str
    term: int
    ids: Callable[[], str]
    draw: Callable[[], float]

    def event(self, cls: Callable[..., E], **fields: Any) -> E:
        """An event of `cls` with the envelope filled in."""
        return cls(id=self.ids(), at=self.now, actor=self.actor, **fields)


def cancellations(view: View, stamp: Stamp) -> list[AnyEvent]:
    """Every unfinished task of a run whose cancellation was requested."""
    return [
        stamp.event(
            TaskCancelled,
            task_id=task.task_id,
            reason="run cancelled",
            term=stamp.term,
        )
        for run in view.runs.values()
        if run.cancel_requested and run.finished is None
        for task in view.tasks_of(run.run_id)
        if not task.terminal
    ]


def retries(view: View, stamp: Stamp) -> list[AnyEvent]:
    """A retry for each attempt that failed for a retryable reason: after a jittered backoff,
    avoiding the workers it failed on, and on a larger machine after a resource exhaustion.

    A larger machine is asked for only when one has registered: on a fleet of one size the
    retry could never be placed, and would wait for ever instead of running again and, if it
    exhausts the machine every time, failing after its last attempt with the reason."""
    events: list[AnyEvent] = []
    for task_id in view.retrying_ids:
        task = view.tasks[task_id]
        worker = view.workers.get(task.worker_id)
        memory = worker.registered.capabilities.memory_gb if worker else 0.0
        escalate = (
            task.category == "infrastructure"
            and retry.resource_exhaustion(task.message)
            and any(w.registered.capabilities.memory_gb > memory for w in view.workers.values())
        )
        events.append(
            stamp.event(
                TaskRetryScheduled,
                task_id=task_id,
                attempt=task.attempt,
                not_before=stamp.now + retry.backoff(task.attempt, stamp.draw()),
                avoid=tuple(sorted({*task.avoid, task.worker_id} - {""})),
                min_memory_gb=memory if escalate else 0,
                reason=f"{task.category}: {task.message}"[:300],
                term=stamp.term,
            )
        )
    return events


def failure(
    view: View, stamp: Stamp, task_id: str, worker_id: str, category: str, message: str
) -> TaskFailed:
    """The attempt of `task_id` on `worker_id` fails with `category`; a retryable category
    makes it retried.  On a straggler's speculative twin's worker, the twin fails and the
    original attempt, elsewhere, runs on."""
    task = view.tasks[task_id]
    twin = worker_id == task.spare_worker
    return stamp.event(
        TaskFailed,
        task_id=task_id,
        worker_id=worker_id,
        attempt=task.spare_attempt if twin else task.attempt,
        category=category,
        message=message,
        cases=tuple(CaseResult(n, "error", message=message) for n in task.spec.nodeids),
        term=stamp.term,
    )


def attempt_failures(
    view: View, stamp: Stamp, worker_id: str, category: str, message: str
) -> list[AnyEvent]:
    """Every unfinished attempt on `worker_id` fails (see `failure`)."""
    return [
        failure(view, stamp, task_id, worker_id, category, message)
        for task_id in sorted(view.active.get(worker_id, ()))
    ]


def stopped_workers(view: View, stamp: Stamp) -> list[AnyEvent]:
    """The attempts still held by workers that stopped fail as infrastructure errors."""
    return [
        event
        for worker_id, worker in view.workers.items()
        if worker.status == "stopped" and view.active.get(worker_id)
        for event in attempt_failures(
            view, stamp, worker_id, "infrastructure", f"worker {worker_id} stopped"
        )
    ]


def quarantines(view: View, stamp: Stamp) -> list[AnyEvent]:
    """Active workers that reported QUARANTINE_AFTER infrastructure failures in a row."""
    events: list[AnyEvent] = []
    for worker_id, worker in view.workers.items():
        streak = view.infra_streak.get(worker_id, 0)
        if worker.status == "active" and streak >= retry.QUARANTINE_AFTER:
            events.append(
                stamp.event(
                    WorkerQuarantined,
                    worker_id=worker_id,
                    reason=f"{streak} infrastructure failures in a row; a passing health "
                    f"check or `dtf worker enable {worker_id}` puts it back",
                    term=stamp.term,
                )
            )
    return events


def health_checks(view: View, stamp: Stamp) -> list[AnyEvent]:
    """The health check of each quarantined worker, one step at a time: queue it (once per
    quarantine), assign it to that worker (quarantined workers take no ordinary work, so no
    strategy sees them), and enable the worker when it passed.  A failed check leaves the
    worker out until an operator enables it."""
    events: list[AnyEvent] = []
    for worker_id, worker in view.workers.items():
        if worker.status != "quarantined":
            continue
        task = view.tasks.get(view.health.get(worker_id, ""))
        if task is None or task.queued_at < worker.changed_at:
            run_id = f"health-{stamp.ids()[:8]}"
            events.append(
                stamp.event(
                    TaskQueued,
                    task_id=f"{run_id}.0",
                    run_id=run_id,
                    kind="health",
                    timeout=HEALTH_TIMEOUT_S,
                    max_attempts=1,
                    pinned=worker_id,
                )
            )
        elif task.status == "queued" and not view.active.get(worker_id):
            events.append(assignment(view, stamp, task.task_id, worker_id))
        elif task.status == "completed" and task.exit_code == 0:
            events.append(stamp.event(WorkerEnabled, worker_id=worker_id))
    return events


def assignment(view: View, stamp: Stamp, task_id: str, worker_id: str) -> TaskAssigned:
    """The next attempt of a queued task, on `worker_id`."""
    return stamp.event(
        TaskAssigned,
        task_id=task_id,
        worker_id=worker_id,
        attempt=view.tasks[task_id].attempt + 1,
        term=stamp.term,
    )


def assignments(view: View, stamp: Stamp, strategy: Strategy) -> list[AnyEvent]:
    """Queued tasks whose backoff is over, placed on free capable slots by `strategy`.

    Read through the View's index of the queue for this strategy, so a round costs about the
    same with a hundred thousand tasks queued as with ten (`scheduling.placing`)."""
    if not view.queued_ids:
        return []
    workers = free_workers(view)
    if not workers:
        return []
    placed = index_of(view, strategy).place(strategy, view, stamp.now, workers)
    return [assignment(view, stamp, d.task_id, d.worker_id) for d in placed]


def losers(view: View, stamp: Stamp) -> list[AnyEvent]:
    """The attempt that lost a race with its speculative twin (or the twin that lost) is told
    to stop."""
    return [
        stamp.event(
            TaskCancelled,
            task_id=task_id,
            attempt=attempt,
            reason="another attempt finished first",
            term=stamp.term,
        )
        for task_id, attempt in view.losers.items()
    ]


def speculations(
    view: View, stamp: Stamp, straggler_after: float = STRAGGLER_AFTER_S
) -> list[AnyEvent]:
    """A second attempt for each straggler, on an idle capable worker, with the queue empty.

    A straggler has run longer than STRAGGLER_FACTOR times its expected duration and at least
    `straggler_after` seconds.  The first of the two attempts to finish wins.
    """
    if view.queued_ids:
        return []
    idle: list[WorkerSlots] = free_workers(view)
    events: list[AnyEvent] = []
    for task_id in running_ids(view):
        if not idle:
            break
        task = view.tasks[task_id]
        if task.status != "running" or task.spare_attempt:
            continue
        expected = task.spec.expected_duration or 1.0
        if stamp.now - task.started_at < max(STRAGGLER_FACTOR * expected, straggler_after):
            continue
        elsewhere = [w for w in capable(task, idle) if w.worker_id != task.worker_id]
        if not elsewhere:
            continue
        chosen = max(elsewhere, key=lambda w: (w.free, w.worker_id))
        chosen.free -= 1
        idle = [w for w in idle if w.free > 0]
        events.append(
            stamp.event(
                TaskSpeculated,
                task_id=task_id,
                worker_id=chosen.worker_id,
                attempt=task.attempt + 1,
                term=stamp.term,
            )
        )
    return events


def finished_runs(view: View, stamp: Stamp) -> list[AnyEvent]:
    """Each run whose tasks are all terminal, with its counts."""
    return [
        stamp.event(
            RunFinished,
            run_id=run_id,
            counts=view.run_counts(run_id),
            cancelled=run.cancel_requested,
            term=stamp.term,
        )
        for run_id, run in view.runs.items()
        if run.finished is None and view.run_done(run_id)
    ]


def lost_workers(
    view: View, stamp: Stamp, silent_for: Mapping[str, float], lost_after: float
) -> list[AnyEvent]:
    """Workers whose heartbeat has been silent longer than `lost_after` seconds: each is
    declared lost and its unfinished attempts fail as infrastructure errors.

    `silent_for` is the coordinator's own reckoning (monotonic, per worker); it says nothing
    when no heartbeat at all arrives, which the caller treats as its own blindness."""
    events: list[AnyEvent] = []
    for worker_id, worker in view.workers.items():
        silent = silent_for.get(worker_id, 0.0)
        if worker.status in ("stopped", "lost") or silent <= lost_after:
            continue
        reason = f"no heartbeat for {silent:.1f}s"
        events.append(stamp.event(WorkerLost, worker_id=worker_id, reason=reason, term=stamp.term))
        message = f"worker {worker_id} lost ({reason})"
        events.extend(attempt_failures(view, stamp, worker_id, "infrastructure", message))
    return events


def backstop_timeouts(view: View, stamp: Stamp) -> list[AnyEvent]:
    """Running attempts silent BACKSTOP_GRACE_S past their task's timeout time out."""
    events: list[AnyEvent] = []
    for task_id in running_ids(view):
        task = view.tasks[task_id]
        since = task.started_at or task.assigned_at
        if task.status != "running" or stamp.now - since <= task.spec.timeout + BACKSTOP_GRACE_S:
            continue
        message = (
            f"no result {stamp.now - since:.0f}s after start on {task.worker_id} "
            f"(timeout {task.spec.timeout:g}s)"
        )
        events.append(failure(view, stamp, task_id, task.worker_id, "timeout", message))
    return events


def running_ids(view: View) -> list[str]:
    """The tasks with a live attempt, each once (a straggler and its twin are one task)."""
    return sorted({task_id for ids in view.active.values() for task_id in ids})


Rule = Callable[[View, Stamp], list[AnyEvent]]


def round_rules(strategy: Strategy, straggler_after: float = STRAGGLER_AFTER_S) -> tuple[Rule, ...]:
    """One decision round, in order: each rule sees the View after the events of those
    before it (a retry scheduled is a queued task to assign; an assignment takes the idle
    worker a speculation would have had)."""
    return (
        cancellations,
        retries,
        stopped_workers,
        quarantines,
        health_checks,
        partial(assignments, strategy=strategy),
        losers,
        partial(speculations, straggler_after=straggler_after),
        finished_runs,
    )


def next_retry_at(view: View, delayed: Iterable[str]) -> float | None:
    """When the earliest of the `delayed` queued tasks may start (None: none waits)."""
    times = [view.tasks[t].not_before for t in delayed if t in view.queued_ids]
    return min(times) if times else None
