"""The fleet as the dashboard sees it, folded purely.

`Fleet` owns the core's `View` of the event stream (folded with the same `evolve` functions as
the coordinator) and what the stream does not hold: the latest heartbeat of each worker with a
short history of its load, the lease holder, the servers' health, the connection's state, the
tests finished recently (for a rate) and the recent incidents the alert rules read.  Nothing
here does I/O or reads a clock: the feed (`tui.feed`) passes values and times in, so the rows
the screens show are tested with plain values.  Everything kept is bounded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from functools import lru_cache

import msgspec

from dtf.core.state import View
from dtf.nats.health import ServerHealth
from events.api import Heartbeat
from events.catalogue import (
    TaskCompleted,
    TaskFailed,
    TaskResultSuperseded,
    WorkerLost,
    WorkerQuarantined,
)
from events.records import Recorded, Rejected, Stored
from projections.analytics.hardware import hardware_class as _hardware_class

RATE_WINDOW_S = 10.0  # tests per second: over the last this many seconds
USAGE_POINTS = 60  # samples of each worker's load kept for its sparkline
INCIDENTS_KEPT = 200
# Incidents older than this when the dashboard first reads them (replayed history) are shown in
# their lists but raise no alert: an alert is for what happens while someone watches.
FRESH_S = 120.0
STALE_BEAT_S = 3.0  # a heartbeat older than this (the TTL is 2 s) is late
_BEAT = msgspec.json.Decoder(Heartbeat)
# Every row of every refresh names its hardware class: parsed once per kind of machine.
hardware_class = lru_cache(maxsize=4096)(_hardware_class)
_FAILED = ("failed", "error")


@dataclass(frozen=True, slots=True)
class Incident:
    """Something that went wrong, as one line: what the alert rules and the overview read."""

    seq: int
    at: float
    kind: str  # "task.failed", "tests.failed", "worker.lost", "worker.quarantined", ...
    ident: str  # the task or worker it is about
    worker: str
    category: str
    message: str


@dataclass(frozen=True, slots=True)
class WorkerRow:
    """One worker as the workers table shows it."""

    worker_id: str
    status: str  # the View's status, or "busy"/"idle" for an active worker with a live beat
    hardware: str
    cpus: int
    memory_gb: float
    gpus: int
    slots: int
    busy: int
    beat_age: float | None  # seconds since its last heartbeat; None: none seen
    tasks: tuple[str, ...]
    streak: int  # infrastructure failures in a row
    cpu: tuple[float, ...]  # recent CPU use, percent, oldest first
    memory: tuple[float, ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run: its tasks and tests so far, how long it has taken, and when it should end."""

    run_id: str
    submitted_at: float
    finished: bool
    cancelled: bool
    tasks: int
    tasks_done: int
    cases: int
    counts: dict[str, int]
    elapsed: float
    eta: float | None  # seconds left, from the pace so far; None before the first task ends

    @property
    def progress(self) -> float:
        return self.tasks_done / self.tasks if self.tasks else (1.0 if self.finished else 0.0)


@dataclass(frozen=True, slots=True)
class Census:
    """How many workers are in each state (stopped ones are gone and not counted)."""

    up: int = 0
    busy: int = 0
    draining: int = 0
    quarantined: int = 0
    disabled: int = 0
    lost: int = 0
    late: int = 0  # active but its heartbeat is overdue


@dataclass
class Fleet:
    """Everything the dashboard shows live (see the module's docstring)."""

    started_at: float
    view: View = field(default_factory=View)
    beats: dict[str, Heartbeat] = field(default_factory=dict)
    cpu: dict[str, deque[float]] = field(default_factory=dict)
    memory: dict[str, deque[float]] = field(default_factory=dict)
    leader: str | None = None
    leader_known: bool = False  # the lease has been read at least once
    terms: dict[str, int] = field(default_factory=dict)  # coordinator -> highest term seen
    servers: dict[str, ServerHealth] = field(default_factory=dict)
    connected: bool = True
    disconnected_at: float = 0.0
    caught_up: bool = False
    history_problem: str = ""  # the read model is unreadable (not merely absent or busy)
    finished: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=4096))
    incidents: deque[Incident] = field(default_factory=lambda: deque(maxlen=INCIDENTS_KEPT))
    events: int = 0  # messages folded
    last_event_at: float = 0.0

    # --- folding ---------------------------------------------------------------------

    def fold(self, rec: Stored) -> None:
        """One stored message of the event stream, as the coordinator folds it."""
        rec = self.view.judge(rec)
        self.events += 1
        if isinstance(rec, Rejected):
            self._incident(rec.seq, rec.at, "rejected", rec.subject, "", "security", rec.reason)
            return
        assert isinstance(rec, Recorded)
        event = rec.event
        self.last_event_at = max(self.last_event_at, event.at)
        term = getattr(event, "term", 0)
        if term and term > self.terms.get(event.actor, 0):
            self.terms[event.actor] = term
        if isinstance(event, TaskCompleted | TaskFailed) and event.cases:
            self.finished.append((event.at, len(event.cases)))
        if isinstance(event, TaskFailed):
            self._incident(
                rec.seq,
                event.at,
                "task.failed",
                event.task_id,
                event.worker_id,
                event.category,
                event.message,
            )
        elif isinstance(event, TaskCompleted):
            failed = [c for c in event.cases if c.outcome in _FAILED]
            if failed:
                names = ", ".join(c.nodeid for c in failed[:3])
                more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
                self._incident(
                    rec.seq,
                    event.at,
                    "tests.failed",
                    event.task_id,
                    event.worker_id,
                    "test",
                    f"{len(failed)} failed: {names}{more}",
                )
        elif isinstance(event, WorkerLost | WorkerQuarantined):
            kind = "worker.lost" if isinstance(event, WorkerLost) else "worker.quarantined"
            self._incident(
                rec.seq,
                event.at,
                kind,
                event.worker_id,
                event.worker_id,
                "infrastructure",
                event.reason,
            )
        elif isinstance(event, TaskResultSuperseded):
            self._incident(
                rec.seq,
                event.at,
                "task.superseded",
                event.task_id,
                event.worker_id,
                "cleanup",
                f"attempt {event.attempt} finished after it was given up ({event.outcome})",
            )

    def _incident(
        self, seq: int, at: float, kind: str, ident: str, worker: str, category: str, msg: str
    ) -> None:
        self.incidents.append(Incident(seq, at, kind, ident, worker, category, msg))

    def beat(self, worker_id: str, value: bytes | None) -> None:
        """A change of a worker's heartbeat key; None: it was deleted (a clean stop)."""
        if value is None:
            self.beats.pop(worker_id, None)
            return
        try:
            beat = _BEAT.decode(value)
        except msgspec.DecodeError:
            return  # not a heartbeat: nothing to show (the coordinator ignores it too)
        self.beats[worker_id] = beat
        if beat.cpu >= 0:
            self.cpu.setdefault(worker_id, deque(maxlen=USAGE_POINTS)).append(beat.cpu)
        if beat.memory >= 0:
            self.memory.setdefault(worker_id, deque(maxlen=USAGE_POINTS)).append(beat.memory)

    def lease(self, holder: str | None) -> None:
        self.leader, self.leader_known = holder, True

    def connection(self, up: bool, now: float) -> None:
        if self.connected and not up:
            self.disconnected_at = now
        self.connected = up

    # --- reading -----------------------------------------------------------------------

    @property
    def term(self) -> int:
        """The leading coordinator's term, as its events carry it (0: none seen yet)."""
        return self.terms.get(self.leader or "", 0)

    def fresh(self, at: float) -> bool:
        """Whether something that happened at `at` is news to whoever watches."""
        return at >= self.started_at - FRESH_S

    def tests_per_second(self, now: float) -> float:
        since = now - RATE_WINDOW_S
        return sum(n for at, n in self.finished if since <= at <= now) / RATE_WINDOW_S

    def queue_depth(self) -> int:
        return len(self.view.queued_ids) + len(self.view.retrying_ids)

    def running(self) -> int:
        return sum(len(tasks) for tasks in self.view.active.values())

    def workers(self, now: float) -> list[WorkerRow]:
        """Every worker that has not stopped, by id."""
        rows = []
        for w in sorted(self.view.workers.values(), key=lambda w: w.worker_id):
            if w.status == "stopped":
                continue
            caps = w.registered.capabilities
            tasks = tuple(sorted(self.view.active.get(w.worker_id, ())))
            beat = self.beats.get(w.worker_id)
            status: str = w.status
            if status == "active":
                status = "busy" if tasks else "idle"
            rows.append(
                WorkerRow(
                    worker_id=w.worker_id,
                    status=status,
                    hardware=hardware_class(caps),
                    cpus=caps.cpus,
                    memory_gb=caps.memory_gb,
                    gpus=len(caps.gpus),
                    slots=w.slots,
                    busy=len(tasks),
                    beat_age=max(0.0, now - beat.at) if beat else None,
                    tasks=tasks,
                    streak=self.view.infra_streak.get(w.worker_id, 0),
                    cpu=tuple(self.cpu.get(w.worker_id, ())),
                    memory=tuple(self.memory.get(w.worker_id, ())),
                    labels=caps.labels,
                )
            )
        return rows

    def census(self, now: float) -> Census:
        counts = dict.fromkeys(("up", "busy", "draining", "quarantined", "disabled", "lost"), 0)
        late = 0
        for row in self.workers(now):
            if row.status in ("busy", "idle"):
                counts["up"] += 1
                counts["busy"] += row.status == "busy"
                late += row.beat_age is None or row.beat_age > STALE_BEAT_S
            else:
                counts[row.status] = counts.get(row.status, 0) + 1
        return Census(late=late, **counts)

    def runs(self, now: float) -> list[RunRow]:
        """Every run, the newest first."""
        rows = []
        for run_id, run in self.view.runs.items():
            submitted = run.submitted
            tasks = len(submitted.task_ids) or len(self.view.run_tasks.get(run_id, ()))
            done = self.view.terminal_count.get(run_id, 0)
            end = run.finished.at if run.finished else now
            elapsed = max(0.0, end - submitted.at)
            eta = None
            if run.finished is None and 0 < done < tasks:
                eta = elapsed / done * (tasks - done)
            counts = dict(run.finished.counts) if run.finished else self.view.run_counts(run_id)
            rows.append(
                RunRow(
                    run_id=run_id,
                    submitted_at=submitted.at,
                    finished=run.finished is not None,
                    cancelled=bool(run.finished and run.finished.cancelled),
                    tasks=tasks,
                    tasks_done=done,
                    cases=submitted.total_cases,
                    counts=counts,
                    elapsed=elapsed,
                    eta=eta,
                )
            )
        rows.sort(key=lambda r: r.submitted_at, reverse=True)
        return rows

    def tasks_of(self, run_id: str):
        """The run's tasks in the order they were queued."""
        return self.view.tasks_of(run_id)
