"""The coordinator's rules (dtf.core.decisions) with plain values: no NATS, no processes.

Besides one test per rule, a whole run is driven through the View and the rules by a
simulated worker, and a recorded log (tests/fixtures/events.jsonl, written by a real
coordinator) is replayed: at each of the coordinator's own events, the rules decide the same
kind of event for the same aggregate from the log before it.
"""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Iterable

from msgspec.structs import replace

from dtf.core import decisions
from dtf.core.scheduling import strategy
from dtf.core.state import View
from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    RunCancelRequested,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskSpeculated,
    TaskStarted,
    WorkerEnabled,
    WorkerQuarantined,
    WorkerRegistered,
)
from events.codec import decode
from tests.support.paths import EVENTS_FIXTURE

CAPS = Capabilities(platform="linux", hostname="h", cpus=4, memory_gb=16)


class Log:
    """A View with the events folded in so far, at increasing sequences."""

    def __init__(self) -> None:
        self.view = View()
        self.seq = itertools.count(1)
        self.ids = (f"id{n}" for n in itertools.count())
        self.events: list[AnyEvent] = []

    def add(self, *events: AnyEvent) -> None:
        for event in events:
            self.view.apply(event, next(self.seq))
            self.events.append(event)

    def stamp(self, now: float, draw: float = 0.5) -> decisions.Stamp:
        return decisions.Stamp(now, "c1", 7, lambda: next(self.ids), lambda: draw)

    def ev(self, cls: type, now: float = 1.0, **fields: object) -> AnyEvent:
        return cls(id=next(self.ids), at=now, actor="t", **fields)  # type: ignore[no-any-return]

    def round(self, now: float, straggler_after: float = 10.0) -> list[AnyEvent]:
        """One decision round at `now`, each rule's events folded in before the next."""
        decided: list[AnyEvent] = []
        for rule in decisions.round_rules(strategy("duration"), straggler_after):
            events = rule(self.view, self.stamp(now))
            self.add(*events)
            decided.extend(events)
        return decided


def workers(log: Log, *ids: str, slots: int = 1) -> None:
    for worker_id in ids:
        log.add(log.ev(WorkerRegistered, worker_id=worker_id, capabilities=CAPS, slots=slots))


def submit(log: Log, run_id: str, tasks: int, **spec: object) -> list[str]:
    task_ids = [f"{run_id}.{n}" for n in range(tasks)]
    log.add(log.ev(RunSubmitted, run_id=run_id, task_ids=tuple(task_ids)))
    for task_id in task_ids:
        fields = {"nodeids": (f"t.py::{task_id}",), **spec}
        log.add(log.ev(TaskQueued, task_id=task_id, run_id=run_id, kind="pytest", **fields))
    return task_ids


def of(events: Iterable[AnyEvent], cls: type) -> list:
    return [e for e in events if isinstance(e, cls)]


def test_a_run_driven_by_the_rules_and_a_simulated_worker() -> None:
    """Assign, start, fail once for infrastructure, back off, retry elsewhere, finish."""
    log = Log()
    workers(log, "w1", "w2")
    tasks = submit(log, "r", 3)
    now = 10.0
    failed_once = False
    for _ in range(20):
        for assigned in of(log.round(now), TaskAssigned):
            task_id, worker, attempt = assigned.task_id, assigned.worker_id, assigned.attempt
            log.add(log.ev(TaskStarted, now, task_id=task_id, worker_id=worker, attempt=attempt))
            if task_id == tasks[0] and not failed_once:
                failed_once = True
                log.add(
                    log.ev(TaskFailed, now, task_id=task_id, worker_id=worker, attempt=attempt,
                           category="infrastructure", message="pytest process was killed")
                )  # fmt: skip
                continue
            case = CaseResult(f"t.py::{task_id}", "passed")
            log.add(
                log.ev(TaskCompleted, now, task_id=task_id, worker_id=worker, attempt=attempt,
                       cases=(case,))
            )  # fmt: skip
        if log.view.runs["r"].finished is not None:
            break
        now += 1.0
    finished = log.view.runs["r"].finished
    assert finished is not None and finished.counts == {"passed": 3} and finished.term == 7
    [retry] = of(log.events, TaskRetryScheduled)
    first = next(e for e in of(log.events, TaskAssigned) if e.task_id == tasks[0])
    again = [e for e in of(log.events, TaskAssigned) if e.task_id == tasks[0]][1]
    assert retry.avoid == (first.worker_id,) and again.worker_id != first.worker_id
    assert again.attempt == 2 and again.at >= retry.not_before
    assert len(of(log.events, TaskCompleted)) == 3


def test_a_backed_off_retry_waits_for_its_time() -> None:
    log = Log()
    workers(log, "w1")
    [task] = submit(log, "r", 1)
    log.add(log.ev(TaskAssigned, task_id=task, worker_id="w1", attempt=1))
    log.add(log.ev(TaskFailed, task_id=task, worker_id="w1", attempt=1, category="timeout"))
    [retry] = decisions.retries(log.view, log.stamp(100.0, draw=0.5))
    assert retry.not_before == 100.0 + 0.25 and retry.reason.startswith("timeout")
    log.add(retry)
    assert decisions.assignments(log.view, log.stamp(100.1), strategy("duration")) == []
    [assigned] = decisions.assignments(log.view, log.stamp(100.3), strategy("duration"))
    assert (assigned.worker_id, assigned.attempt) == ("w1", 2)  # the avoided one, if alone
    assert decisions.next_retry_at(log.view, [task]) == retry.not_before


def test_a_resource_exhaustion_asks_for_a_larger_machine_where_one_registered() -> None:
    """The floor is the failed worker's memory (the retry needs more), and is asked only
    when some worker offers more: on a fleet of one size it could never be placed."""

    def retried(*fleet: Capabilities) -> tuple[float, list[str]]:
        log = Log()
        for n, caps in enumerate(fleet, start=1):
            log.add(log.ev(WorkerRegistered, worker_id=f"w{n}", capabilities=caps, slots=1))
        [task] = submit(log, "r", 1)
        log.add(log.ev(TaskAssigned, task_id=task, worker_id="w1", attempt=1))
        log.add(
            log.ev(TaskFailed, task_id=task, worker_id="w1", attempt=1, category="infrastructure",
                   message="pytest process was killed by signal SIGKILL")
        )  # fmt: skip
        [retry] = decisions.retries(log.view, log.stamp(5.0))
        log.add(retry)
        placed = decisions.assignments(log.view, log.stamp(100.0), strategy("duration"))
        return retry.min_memory_gb, [a.worker_id for a in placed]

    bigger = replace(CAPS, memory_gb=64)
    assert retried(CAPS, CAPS, bigger) == (CAPS.memory_gb, ["w3"])
    assert retried(CAPS, CAPS) == (0.0, ["w2"])
    assert retried(CAPS) == (0.0, ["w1"])  # the one it failed on, rather than never


def test_lost_workers_and_their_attempts() -> None:
    """Silence past the TTL: lost, and its attempt fails; a twin on it fails alone."""
    log = Log()
    workers(log, "w1", "w2", "w3")
    a, b = submit(log, "r", 2)
    log.add(log.ev(TaskAssigned, task_id=a, worker_id="w1", attempt=1))
    log.add(log.ev(TaskStarted, task_id=a, worker_id="w1", attempt=1))
    log.add(log.ev(TaskSpeculated, task_id=a, worker_id="w3", attempt=2))
    log.add(log.ev(TaskAssigned, task_id=b, worker_id="w2", attempt=1))
    silent = {"w1": 0.4, "w2": 2.5, "w3": 3.0}
    decided = decisions.lost_workers(log.view, log.stamp(9.0), silent, lost_after=2.0)
    assert [(type(e).__name__, e.worker_id) for e in decided] == [
        ("WorkerLost", "w2"),
        ("TaskFailed", "w2"),
        ("WorkerLost", "w3"),
        ("TaskFailed", "w3"),
    ]
    twin_failure = decided[3]
    assert (twin_failure.task_id, twin_failure.attempt) == (a, 2)
    assert twin_failure.cases[0].message.startswith("worker w3 lost (no heartbeat for 3.0s)")
    log.add(*decided)
    assert log.view.tasks[a].status == "running" and log.view.tasks[a].worker_id == "w1"
    assert log.view.tasks[b].status == "retrying"


def test_quarantine_then_health_check_then_enabled() -> None:
    log = Log()
    workers(log, "w1")
    tasks = submit(log, "r", 3, max_attempts=1)
    for task_id in tasks:
        log.add(log.ev(TaskAssigned, task_id=task_id, worker_id="w1", attempt=1))
        log.add(
            TaskFailed(id=f"f{task_id}", at=2.0, actor="w1", task_id=task_id, worker_id="w1",
                       category="infrastructure")
        )  # fmt: skip
    [quarantined] = decisions.quarantines(log.view, log.stamp(3.0))
    assert isinstance(quarantined, WorkerQuarantined) and "3 infrastructure" in quarantined.reason
    log.add(quarantined)
    [check] = decisions.health_checks(log.view, log.stamp(4.0))
    assert isinstance(check, TaskQueued) and check.pinned == "w1" and check.kind == "health"
    log.add(check)
    assert decisions.assignments(log.view, log.stamp(4.0), strategy("duration")) == []
    [assigned] = decisions.health_checks(log.view, log.stamp(4.1))
    assert isinstance(assigned, TaskAssigned) and assigned.worker_id == "w1"
    log.add(assigned)
    assert decisions.health_checks(log.view, log.stamp(4.2)) == []  # running: nothing to do
    log.add(log.ev(TaskCompleted, task_id=check.task_id, worker_id="w1", attempt=1))
    [enabled] = decisions.health_checks(log.view, log.stamp(5.0))
    assert isinstance(enabled, WorkerEnabled)
    log.add(enabled)
    assert log.view.workers["w1"].status == "active"


def test_stragglers_get_a_twin_only_with_the_queue_empty() -> None:
    log = Log()
    workers(log, "w1", "w2")
    [a] = submit(log, "r", 1, expected_duration=1.0)
    log.add(log.ev(TaskAssigned, task_id=a, worker_id="w1", attempt=1))
    log.add(log.ev(TaskStarted, 100.0, task_id=a, worker_id="w1", attempt=1))
    assert decisions.speculations(log.view, log.stamp(105.0), straggler_after=10.0) == []
    [twin] = decisions.speculations(log.view, log.stamp(111.0), straggler_after=10.0)
    assert (twin.task_id, twin.worker_id, twin.attempt) == (a, "w2", 2)
    submit(log, "r2", 1)  # a queued task has the idle worker's slot first
    assert decisions.speculations(log.view, log.stamp(111.0), straggler_after=10.0) == []


def test_a_cancelled_run_cancels_its_tasks_then_finishes() -> None:
    log = Log()
    workers(log, "w1")
    tasks = submit(log, "r", 2)
    log.add(log.ev(TaskAssigned, task_id=tasks[0], worker_id="w1", attempt=1))
    log.add(log.ev(RunCancelRequested, run_id="r"))
    decided = log.round(3.0)
    assert sorted(e.task_id for e in of(decided, TaskCancelled)) == tasks
    [finished] = of(decided, RunFinished)
    assert finished.cancelled and not of(decided, TaskAssigned)


def test_the_backstop_times_out_a_silent_attempt_once() -> None:
    log = Log()
    workers(log, "w1", "w2")
    [a] = submit(log, "r", 1, timeout=60.0)
    log.add(log.ev(TaskAssigned, task_id=a, worker_id="w1", attempt=1))
    log.add(log.ev(TaskStarted, 5.0, task_id=a, worker_id="w1", attempt=1))
    log.add(log.ev(TaskSpeculated, task_id=a, worker_id="w2", attempt=2))
    assert decisions.backstop_timeouts(log.view, log.stamp(94.0)) == []  # 60 s + 30 s grace
    [timeout] = decisions.backstop_timeouts(log.view, log.stamp(96.0))
    assert (timeout.category, timeout.attempt, timeout.worker_id) == ("timeout", 1, "w1")


def test_a_recorded_log_replays_through_the_rules() -> None:
    """At each event the real coordinator wrote, the rules decide an event of that kind for
    that aggregate, from the log before it and at its time."""
    records = [json.loads(line) for line in EVENTS_FIXTURE.read_text().splitlines()]
    view = View()
    checked = 0
    for record in records:
        event = decode(json.dumps(record["event"]).encode())
        if event.actor.startswith("coord"):
            fresh = (f"replay{n}" for n in itertools.count())
            stamp = decisions.Stamp(
                event.at, event.actor, 1, lambda ids=fresh: next(ids), lambda: 0.0
            )
            decided = []
            replay = copy.deepcopy(view)  # the rules' own events must not reach the log
            for rule in decisions.round_rules(strategy("duration")):
                made = rule(replay, stamp)
                for n, made_event in enumerate(made):
                    replay.apply(made_event, 10_000_000 + len(decided) + n)
                decided.extend(made)
            wanted = (type(event), event.key)
            assert wanted in {(type(d), d.key) for d in decided}, (event, decided)
            checked += 1
        view.apply(event, record["seq"])
    assert checked >= 8
