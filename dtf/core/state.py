"""State folded from events: tasks, workers and runs.

`evolve_*` functions are pure: `(state | None, event) -> state`.  `View` holds the current
state of every aggregate in dicts and applies recorded events to them; it is what the
coordinator, the `dtf run` client and `dtf status` all fold the stream into.  An event that
does not fit the current state (stale, out of order, unknown aggregate) changes nothing and is
counted in `View.ignored`; it never raises.  A message that is not a readable event changes no
state either, but still advances its subject's aggregate sequence (`View.reject`).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Literal, Protocol

import msgspec
from msgspec.structs import replace

from dtf.core import authority
from events.catalogue import (
    AnyEvent,
    CaseResult,
    OfTask,
    OfWorker,
    RunCancelRequested,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskSpeculated,
    TaskStarted,
    WorkerDisabled,
    WorkerDraining,
    WorkerEnabled,
    WorkerLost,
    WorkerQuarantined,
    WorkerRegistered,
    WorkerStopped,
)
from events.records import Recorded, Rejected, Signer, Stored
from events.subjects import aggregate_of

TaskStatus = Literal[
    "queued", "assigned", "running", "retrying", "completed", "failed", "cancelled"
]
WorkerStatus = Literal["active", "draining", "stopped", "lost", "quarantined", "disabled"]
# Failures worth another attempt; a failing test is a result, not a retry.
RETRYABLE: frozenset[str] = frozenset({"infrastructure", "timeout"})
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
REJECTIONS_KEPT = 100  # the latest unreadable messages a View remembers (all are counted)


class QueueWatcher(Protocol):
    """Told of every task that enters the queue (`dtf.core.scheduling.placing.QueueIndex`)."""

    def add(self, task: TaskState) -> None: ...


class TaskState(msgspec.Struct, frozen=True, gc=False):
    """One task as its events left it (a msgspec Struct: replays fold millions of these)."""

    spec: TaskQueued
    status: TaskStatus = "queued"
    worker_id: str = ""
    attempt: int = 0
    queued_at: float = 0.0
    queue_seq: int = 0
    assigned_at: float = 0.0
    started_at: float = 0.0
    finished_at: float = 0.0
    cases: tuple[CaseResult, ...] = ()
    metrics: dict[str, float] = {}
    exit_code: int = 0
    category: str = ""
    message: str = ""
    not_before: float = 0.0
    avoid: tuple[str, ...] = ()
    min_memory_gb: float = 0.0
    spare_worker: str = ""  # a speculative second attempt (stragglers), while it runs
    spare_attempt: int = 0

    @property
    def task_id(self) -> str:
        return self.spec.task_id

    @property
    def live_attempts(self) -> tuple[int, ...]:
        """Attempts whose result would still be accepted."""
        if self.status not in ("assigned", "running"):
            return ()
        return (self.attempt, self.spare_attempt) if self.spare_attempt else (self.attempt,)

    @property
    def busy_workers(self) -> frozenset[str]:
        """Workers whose slots this task occupies."""
        if self.status not in ("assigned", "running"):
            return frozenset()
        return frozenset(w for w in (self.worker_id, self.spare_worker) if w)

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def owner_of(self, attempt: int) -> str | None:
        """The worker a live attempt is assigned to (None: not a live attempt)."""
        if self.status not in ("assigned", "running"):
            return None
        if attempt == self.attempt:
            return self.worker_id
        if self.spare_attempt and attempt == self.spare_attempt:
            return self.spare_worker
        return None


def refusal(signer: Signer, subject: str, event: AnyEvent, task: TaskState | None) -> str | None:
    """Why `signer` may not have written `event`, given the state of its task before it
    (`dtf.core.authority`); None when it may."""
    attempt = getattr(event, "attempt", 0)
    owner = task.owner_of(attempt) if task is not None and attempt else None
    return authority.refusal(signer, subject, event, owner)


class WorkerState(msgspec.Struct, frozen=True, gc=False):
    worker_id: str
    registered: WorkerRegistered
    status: WorkerStatus = "active"
    reason: str = ""
    changed_at: float = 0.0  # when the status last changed

    @property
    def slots(self) -> int:
        return self.registered.slots


class RunState(msgspec.Struct, frozen=True, gc=False):
    submitted: RunSubmitted
    cancel_requested: bool = False
    finished: RunFinished | None = None

    @property
    def run_id(self) -> str:
        return self.submitted.run_id


def evolve_task(state: TaskState | None, event: AnyEvent, seq: int = 0) -> TaskState | None:
    """Next state of one task, or the same state when the event does not apply.

    A running task may have a second, speculative attempt (`spare_*`); the first of the two
    to finish decides, and a failure of one leaves the other running.
    """
    match event:
        case TaskQueued():
            if state is not None:
                return state
            return TaskState(spec=event, queued_at=event.at, queue_seq=seq)
        case _ if state is None or state.terminal:
            return state
        case TaskAssigned():
            return replace(
                state,
                status="assigned",
                worker_id=event.worker_id,
                attempt=event.attempt,
                assigned_at=event.at,
            )
        case TaskSpeculated() if (
            state.status == "running" and not state.spare_attempt and event.attempt > state.attempt
        ):
            return replace(state, spare_worker=event.worker_id, spare_attempt=event.attempt)
        case TaskStarted() if event.attempt == state.attempt and state.status == "assigned":
            return replace(state, status="running", started_at=event.at)
        case TaskCompleted() if event.attempt in state.live_attempts:
            return replace(
                state,
                status="completed",
                worker_id=event.worker_id,
                attempt=event.attempt,
                spare_worker="",
                spare_attempt=0,
                finished_at=event.at,
                cases=event.cases,
                metrics=event.metrics,
                exit_code=event.exit_code,
            )
        case TaskFailed() if state.spare_attempt and event.attempt in state.live_attempts:
            if event.attempt == state.spare_attempt:  # the speculation failed: carry on
                return replace(state, spare_worker="", spare_attempt=0)
            # The original failed while its spare runs: the spare becomes the attempt.
            return replace(
                state,
                worker_id=state.spare_worker,
                attempt=state.spare_attempt,
                spare_worker="",
                spare_attempt=0,
            )
        case TaskFailed() if event.attempt == state.attempt and state.status != "retrying":
            retry = event.category in RETRYABLE and event.attempt < state.spec.max_attempts
            return replace(
                state,
                status="retrying" if retry else "failed",
                finished_at=event.at,
                cases=event.cases,
                category=event.category,
                message=event.message,
            )
        case TaskRetryScheduled() if state.status == "retrying" and event.attempt == state.attempt:
            return replace(
                state,
                status="queued",
                worker_id="",
                not_before=event.not_before,
                avoid=event.avoid,
                min_memory_gb=max(state.min_memory_gb, event.min_memory_gb),
            )
        case TaskCancelled() if event.attempt == 0:
            return replace(state, status="cancelled", finished_at=event.at, message=event.reason)
    return state


def evolve_worker(state: WorkerState | None, event: AnyEvent) -> WorkerState | None:
    match event:
        case WorkerRegistered():
            return WorkerState(event.worker_id, event, changed_at=event.at)
        case _ if state is None:
            return None
        case WorkerDraining():
            return replace(state, status="draining", changed_at=event.at)
        case WorkerStopped():
            return replace(state, status="stopped", reason=event.reason, changed_at=event.at)
        case WorkerLost():
            return replace(state, status="lost", reason=event.reason, changed_at=event.at)
        case WorkerQuarantined():
            return replace(state, status="quarantined", reason=event.reason, changed_at=event.at)
        case WorkerDisabled():
            return replace(state, status="disabled", reason=event.reason, changed_at=event.at)
        case WorkerEnabled() if state.status in ("quarantined", "disabled"):
            return replace(state, status="active", reason="", changed_at=event.at)
    return state


def evolve_run(state: RunState | None, event: AnyEvent) -> RunState | None:
    match event:
        case RunSubmitted():
            return state or RunState(event)
        case _ if state is None:
            return None
        case RunCancelRequested():
            return replace(state, cancel_requested=True)
        case RunFinished() if state.finished is None:
            return replace(state, finished=event)
    return state


@dataclass
class View:
    """Every aggregate's current state, plus what scheduling needs derived from it.

    Owns: tasks, workers, runs, the last stream sequence seen per aggregate (the expected
    sequence for the next guarded write), worker -> active task ids, the latest duration seen
    per test node id, a count of events that changed nothing, and the count and latest few
    of the messages rejected as unreadable; and the indexes of the queue strategies ask for.
    """

    tasks: dict[str, TaskState] = field(default_factory=dict)
    workers: dict[str, WorkerState] = field(default_factory=dict)
    runs: dict[str, RunState] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)
    active: dict[str, set[str]] = field(default_factory=dict)
    run_tasks: dict[str, list[str]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    queued_ids: dict[str, None] = field(default_factory=dict)  # insertion-ordered set
    retrying_ids: dict[str, None] = field(default_factory=dict)
    infra_streak: dict[str, int] = field(default_factory=dict)  # worker -> failures in a row
    terminal_count: dict[str, int] = field(default_factory=dict)  # run -> tasks ended
    losers: dict[str, int] = field(default_factory=dict)  # task -> attempt to cancel
    health: dict[str, str] = field(default_factory=dict)  # worker -> its latest health task
    last_seq: int = 0
    ignored: int = 0
    rejected: int = 0
    rejections: deque[Rejected] = field(default_factory=lambda: deque(maxlen=REJECTIONS_KEPT))
    # Indexes of the queue kept for a scheduling strategy, by its name (made on first use).
    queue_indexes: dict[str, QueueWatcher] = field(default_factory=dict)
    # The coordinator's View forgets a run's tasks once it finished (`_forget`): it needs
    # none of them after, and a year of them made its memory and its snapshots grow without
    # end.  Readers that show finished runs (`dtf status`, the dashboard) keep everything.
    forget_finished: bool = False

    def fold(self, rec: Stored) -> bool:
        """Fold one stored message in, readable or not; True when it changed some state."""
        return self._fold_admitted(self.admit(rec))

    def judge(self, rec: Stored) -> Stored:
        """Fold one stored message in and return it as admitted (a Rejected saying why when
        its signer may not have written it): for readers that show what they fold."""
        rec = self.admit(rec)
        self._fold_admitted(rec)
        return rec

    def _fold_admitted(self, rec: Stored) -> bool:
        if isinstance(rec, Rejected):
            self.reject(rec)
            return False
        return self.apply(rec.event, rec.seq)

    def admit(self, rec: Stored) -> Stored:
        """`rec`, or a Rejected saying why when its signer may not have written it."""
        if not isinstance(rec, Recorded) or rec.signer is None:
            return rec
        event = rec.event
        task = self.tasks.get(event.task_id) if isinstance(event, OfTask) else None
        why = refusal(rec.signer, rec.subject, event, task)
        return rec if why is None else Rejected(rec.seq, rec.subject, why, event.at, refused=True)

    def reject(self, rec: Rejected) -> None:
        """Count an unreadable message where the server counts it: its subject's aggregate.

        Without this, the next guarded write to that aggregate would expect the sequence
        before the message, be refused, and keep being refused: the aggregate would freeze.
        """
        key = aggregate_of(rec.subject)
        if key is not None and rec.seq > self.versions.get(key, 0):
            self.versions[key] = rec.seq
        self.last_seq = max(self.last_seq, rec.seq)
        self.rejected += 1
        self.rejections.append(rec)

    def apply(self, event: AnyEvent, seq: int) -> bool:
        """Fold one recorded event in; False when it was already applied or changed nothing."""
        key = event.key
        if seq and seq <= self.versions.get(key, 0):
            return False
        if seq:
            self.versions[key] = seq
            self.last_seq = max(self.last_seq, seq)
        if isinstance(event, OfTask):
            return self._apply_task(event, seq)
        if isinstance(event, OfWorker):
            worker_id = event.worker_id
            if isinstance(event, WorkerEnabled | WorkerRegistered):
                self.infra_streak[worker_id] = 0  # a fresh start, not a fourth strike
            new_worker = evolve_worker(self.workers.get(worker_id), event)
            return self._store(self.workers, worker_id, new_worker)
        run_id = event.run_id
        changed = self._store(self.runs, run_id, evolve_run(self.runs.get(run_id), event))
        if changed and self.forget_finished and isinstance(event, RunFinished):
            self._forget(run_id)
        return changed

    def _forget(self, run_id: str) -> None:
        """Drop a finished run's tasks (health checks excepted: the next check of their
        worker depends on them) and its task list; its RunState and every aggregate's
        sequence stay.  A later event of a forgotten task changes nothing, as it would not
        have changed the ended task either; only a TaskQueued reusing its id would queue it
        anew (a submitter's run ids are its own, and a resent one is deduplicated)."""
        for task_id in self.run_tasks.pop(run_id, ()):
            if self.tasks[task_id].spec.kind != "health":
                del self.tasks[task_id]
        self.terminal_count.pop(run_id, None)
        run = self.runs[run_id]
        slim = replace(run.submitted, task_ids=(), precollected=())
        self.runs[run_id] = replace(run, submitted=slim)

    def _store(self, table: dict, key: str, new: object) -> bool:
        if new is None or new is table.get(key):
            self.ignored += 1
            return False
        table[key] = new
        return True

    def _apply_task(self, event: TaskEvent, seq: int) -> bool:
        task_id = event.task_id
        if isinstance(event, TaskCancelled) and event.attempt:
            self.losers.pop(task_id, None)  # the losing attempt was told to stop
        old = self.tasks.get(task_id)
        new = evolve_task(old, event, seq)
        if not self._store(self.tasks, task_id, new):
            return False
        assert new is not None
        if old is None:
            self.run_tasks.setdefault(new.spec.run_id, []).append(task_id)
            if new.spec.kind == "health":
                self.health[new.spec.pinned] = task_id
        if new.terminal and (old is None or not old.terminal):
            self.terminal_count[new.spec.run_id] = self.terminal_count.get(new.spec.run_id, 0) + 1
        before = old.busy_workers if old is not None else frozenset()
        after = new.busy_workers
        for worker_id in before - after:
            running = self.active.get(worker_id)
            if running is not None:
                running.discard(task_id)
                if not running:  # no empty sets: a snapshot's rebuilt View has none either
                    del self.active[worker_id]
        for worker_id in after - before:
            self.active.setdefault(worker_id, set()).add(task_id)
        if before - after and new.terminal and old is not None and old.spare_attempt:
            # The other attempt lost the race: the coordinator cancels it.
            loser = old.spare_attempt if new.attempt == old.attempt else old.attempt
            self.losers[task_id] = loser
        if new.status == "queued" and (old is None or old.status != "queued"):
            for index in self.queue_indexes.values():
                index.add(new)
        for status, ids in (("queued", self.queued_ids), ("retrying", self.retrying_ids)):
            if new.status == status:
                ids[task_id] = None
            else:
                ids.pop(task_id, None)
        if isinstance(event, TaskCompleted):
            self.infra_streak[event.worker_id] = 0
        elif (
            isinstance(event, TaskFailed)
            and event.category == "infrastructure"
            and event.actor == event.worker_id  # only failures the worker saw itself count
        ):
            self.infra_streak[event.worker_id] = self.infra_streak.get(event.worker_id, 0) + 1
        for case in new.cases if new.status == "completed" else ():
            if case.outcome in ("passed", "failed"):
                self.durations[case.nodeid] = case.duration
        return True

    # --- queries ------------------------------------------------------------------------

    def free_slots(self, worker_id: str) -> int:
        worker = self.workers.get(worker_id)
        if worker is None or worker.status != "active":
            return 0
        return max(0, worker.slots - len(self.active.get(worker_id, ())))

    def queued(self) -> list[TaskState]:
        return [self.tasks[t] for t in self.queued_ids]

    def tasks_of(self, run_id: str) -> list[TaskState]:
        return [self.tasks[t] for t in self.run_tasks.get(run_id, ())]

    def run_done(self, run_id: str) -> bool:
        """All tasks of a submitted run are terminal."""
        run = self.runs.get(run_id)
        if run is None:
            return False
        # Counted as tasks end, not scanned: this runs after every event of a big run.
        return self.terminal_count.get(run_id, 0) >= len(run.submitted.task_ids)

    def run_cases(self, run_id: str) -> list[CaseResult]:
        """Every case result of a run: precollected ones first, then tasks in id order."""
        run = self.runs.get(run_id)
        cases = list(run.submitted.precollected) if run else []
        for task in self.tasks_of(run_id):
            cases.extend(task.cases)
        return cases

    def run_counts(self, run_id: str) -> dict[str, int]:
        return dict(Counter(c.outcome for c in self.run_cases(run_id)))
