"""The coordinator: folds the event stream into a View and turns it into decisions.

On start it replays the whole stream, then follows it live, so a follower's state is hot
when it takes over.  Only the holder of the lease (`dtf.lease`) decides: it assigns queued
tasks to workers with free, capable slots (through a scheduling strategy), retries attempts
that failed for infrastructure reasons or timed out (with backoff, on another worker),
declares workers whose heartbeat stopped lost, quarantines workers that keep failing,
cancels the tasks of a cancelled run, and closes runs whose tasks are all done.

Every write to a task or run is guarded by that aggregate's last sequence, so two
coordinators that both believe they lead cannot assign a task twice: the stale write is
rejected and the loser records nothing.  Every event it writes carries its lease term.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Callable

import msgspec

from dtf.core import retry
from dtf.core.scheduling import Strategy, WorkerSlots, free_workers
from dtf.core.scheduling.protocol import capable
from dtf.core.state import View, aggregate_key
from dtf.errors import ConcurrencyConflict, StoreError
from dtf.lease import DEFAULT_TTL_S, Lease, leader_bucket
from dtf.store import EventStore
from events import topology
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
    WorkerRegistered,
)
from events.records import Rejected, Stored
from events.subjects import ROOT

log = logging.getLogger(__name__)
PLAN_SUBJECT = "dtf.api.plan"
# A running task silent this long past its own timeout is declared lost by the coordinator
# (the worker enforces the timeout itself; this is the backstop for a wedged worker).
BACKSTOP_GRACE_S = 30.0
# A running task is a straggler past STRAGGLER_FACTOR x its expected duration, and never
# before STRAGGLER_AFTER_S seconds (expected durations of unknown tests are guesses).
STRAGGLER_FACTOR = 4.0
STRAGGLER_AFTER_S = 10.0
REJECTIONS_LOGGED = 5


class PlanRequest(msgspec.Struct):
    nodeids: list[str] = []


class PlanReply(msgspec.Struct):
    durations: dict[str, float]
    slots: int
    workers: int


def new_id() -> str:
    return uuid.uuid4().hex


class Coordinator:
    """Owns the View of the stream, the lease, the heartbeat clock per worker, the loops."""

    def __init__(
        self,
        store: EventStore,
        strategy: Strategy,
        *,
        coordinator_id: str | None = None,
        lost_after: float = topology.HEARTBEAT_TTL_S,
        lease_ttl: float = DEFAULT_TTL_S,
        straggler_after: float = STRAGGLER_AFTER_S,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.store = store
        self.strategy = strategy
        self.id = coordinator_id or f"coordinator-{uuid.uuid4().hex[:8]}"
        self.lost_after = lost_after
        self.lease_ttl = lease_ttl
        self.straggler_after = straggler_after
        self.clock = clock
        self.rng = rng or random.Random()
        self.view = View()
        self.lease: Lease | None = None
        self.last_beat: dict[str, float] = {}  # worker id -> monotonic time of last heartbeat
        self.last_any_beat = time.monotonic()  # the last heartbeat of any worker
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._delayed: set[str] = set()  # queued tasks waiting out a retry backoff

    @property
    def term(self) -> int:
        return self.lease.term if self.lease else 0

    def _leading(self) -> bool:
        return self.lease is not None and self.lease.leading

    # --- following the stream -----------------------------------------------------------

    def on_record(self, rec: Stored) -> None:
        """Runs for every message in the stream, replayed or live."""
        if isinstance(rec, Rejected):
            self.view.reject(rec)
            if self._ready.is_set():
                self._report_rejection(rec)
                # A write refused because of this message can be retried on its sequence now.
                self._wake.set()
            return
        if self.view.apply(rec.event, rec.seq) and self._ready.is_set():
            if isinstance(rec.event, WorkerRegistered):
                self.last_beat[rec.event.worker_id] = time.monotonic()
            self._wake.set()

    def _report_rejection(self, rec: Rejected) -> None:
        """One warning for each of the first few unreadable messages, then one per hundred."""
        count = self.view.rejected
        if count <= REJECTIONS_LOGGED or count % 100 == 0:
            log.warning(
                "unreadable message at seq %d on %s (%s); %d so far",
                rec.seq,
                rec.subject,
                rec.reason,
                count,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Replay, then compete for the lease and decide while leading, until `stop`."""
        follower = await self.store.follow(f"{ROOT}.>", self.on_record)
        await follower.caught_up.wait()
        log.info(
            "replayed to seq %d; %d tasks, %d workers known, %d unreadable messages",
            self.view.last_seq,
            len(self.view.tasks),
            len(self.view.workers),
            self.view.rejected,
        )
        now = time.monotonic()
        for worker_id in self.view.workers:
            self.last_beat.setdefault(worker_id, now)  # a grace period for workers we inherit
        self._ready.set()
        self.lease = Lease(
            await leader_bucket(self.store.js, self.lease_ttl, self.store.replicas),
            self.id,
            self.lease_ttl,
        )
        api_sub = await self.store.nc.subscribe(
            PLAN_SUBJECT, queue="dtf-coordinators", cb=self._on_plan
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.lease.run(stop))
                group.create_task(self._relay_lease_changes(stop))
                group.create_task(self._decide_loop(stop))
                group.create_task(self._heartbeat_loop(stop))
        finally:
            await api_sub.unsubscribe()
            await follower.stop()

    async def _relay_lease_changes(self, stop: asyncio.Event) -> None:
        assert self.lease is not None
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.lease.changed.wait(), 0.5)
            except TimeoutError:
                continue
            self.lease.changed.clear()
            self._wake.set()

    async def _on_plan(self, msg) -> None:
        """Answers `dtf run` before it splits a suite: recorded durations and free capacity."""
        if not msg.reply:
            return  # a publish, not a request: nobody to answer
        try:
            request = msgspec.json.decode(msg.data, type=PlanRequest)
        except (msgspec.DecodeError, RecursionError):  # garbage gets the answer for no tests
            request = PlanRequest()
        known = self.view.durations
        durations = {n: known[n] for n in request.nodeids if n in known}
        active = [w for w in self.view.workers.values() if w.status == "active"]
        reply = PlanReply(durations, sum(w.slots for w in active), len(active))
        await msg.respond(msgspec.json.encode(reply))

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Track heartbeats from the KV bucket; declare silent workers and stuck tasks lost."""
        kv = await self.store.heartbeats()
        watcher = await kv.watchall()
        try:
            while not stop.is_set():
                try:
                    entry = await watcher.updates(timeout=self.lost_after / 4)
                except TimeoutError:
                    entry = None
                except Exception as exc:  # a reconnect in progress; try again shortly
                    log.warning("heartbeat watch interrupted: %s", exc)
                    entry = None
                if entry is not None and entry.key and entry.value:
                    self._beat(entry.key, time.monotonic())
                if self._leading():
                    await self._declare_lost()
                    await self._backstop_timeouts()
                    if any(self.view.active.values()):
                        self._wake.set()  # stragglers are found by time, not by an event
        finally:
            await watcher.stop()

    def _beat(self, worker_id: str, now: float) -> None:
        if now - self.last_any_beat > self.lost_after:
            # Nobody's heartbeat reached us for a while and now they flow again: the bucket
            # or our connection was down (a stream leader election takes 4-7 s), not every
            # worker at once.  Everyone's clock starts again.
            for known in self.last_beat:
                self.last_beat[known] = now
        self.last_any_beat = now
        self.last_beat[worker_id] = now

    async def _declare_lost(self) -> None:
        now = time.monotonic()
        if now - self.last_any_beat > self.lost_after:
            # Blind, not bereaved: while no heartbeat at all arrives, silence says nothing
            # about any one worker.  If they are really all gone, the first heartbeat of a
            # new worker restarts the clocks and the dead are declared lost after the TTL.
            return
        for worker_id, worker in list(self.view.workers.items()):
            if worker.status in ("stopped", "lost"):
                continue
            silent = now - self.last_beat.get(worker_id, now)
            if silent > self.lost_after:
                reason = f"no heartbeat for {silent:.1f}s"
                log.warning("worker %s lost: %s", worker_id, reason)
                await self._write(
                    WorkerLost(
                        id=new_id(),
                        at=self.clock(),
                        actor=self.id,
                        worker_id=worker_id,
                        reason=reason,
                        term=self.term,
                    )
                )
                await self._fail_tasks_of(worker_id, f"worker {worker_id} lost ({reason})")

    async def _backstop_timeouts(self) -> None:
        now = self.clock()
        for task_id in [t for ids in self.view.active.values() for t in ids]:
            task = self.view.tasks[task_id]
            since = task.started_at or task.assigned_at
            if task.status == "running" and now - since > task.spec.timeout + BACKSTOP_GRACE_S:
                await self._fail(
                    task_id,
                    "timeout",
                    f"no result {now - since:.0f}s after start on "
                    f"{task.worker_id} (timeout {task.spec.timeout:g}s)",
                )

    async def _fail_tasks_of(self, worker_id: str, message: str) -> None:
        """The worker's unfinished attempts fail as infrastructure errors (and are retried)."""
        for task_id in list(self.view.active.get(worker_id, ())):
            await self._fail(task_id, "infrastructure", message, worker_id)

    async def _fail(self, task_id: str, category: str, message: str, worker_id: str = "") -> None:
        """Fail the attempt running on `worker_id` (default: the task's main attempt).

        A worker may hold only a straggler's speculative twin: then the twin fails, and the
        original attempt, on a healthy worker, runs on.
        """
        task = self.view.tasks[task_id]
        twin = bool(worker_id) and worker_id == task.spare_worker
        cases = tuple(CaseResult(n, "error", message=message) for n in task.spec.nodeids)
        await self._write(
            TaskFailed(
                id=new_id(),
                at=self.clock(),
                actor=self.id,
                task_id=task_id,
                worker_id=task.spare_worker if twin else task.worker_id,
                attempt=task.spare_attempt if twin else task.attempt,
                category=category,  # type: ignore[arg-type]
                message=message,
                cases=cases,
                term=self.term,
            )
        )

    # --- deciding -----------------------------------------------------------------------

    async def _decide_loop(self, stop: asyncio.Event) -> None:
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                waking = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {waking, stopping},
                    timeout=self._next_deadline(),
                    return_when=asyncio.FIRST_COMPLETED,
                )
                waking.cancel()
                self._wake.clear()
                if self._leading() and not stop.is_set():
                    await self.decide_once()
        finally:
            stopping.cancel()

    def _next_deadline(self) -> float | None:
        """Seconds until the earliest backed-off retry may start (None: nothing waits)."""
        self._delayed &= self.view.queued_ids.keys()
        future = [self.view.tasks[t].not_before for t in self._delayed]
        if not future:
            return None
        return max(0.01, min(future) - self.clock())

    async def decide_once(self) -> None:
        """One round: cancellations, retries, quarantines, assignments, finished runs."""
        view = self.view
        for run in list(view.runs.values()):
            if run.cancel_requested and run.finished is None:
                for task in view.tasks_of(run.run_id):
                    if not task.terminal:
                        await self._write(
                            TaskCancelled(
                                id=new_id(),
                                at=self.clock(),
                                actor=self.id,
                                task_id=task.task_id,
                                reason="run cancelled",
                                term=self.term,
                            )
                        )
        for task_id in list(view.retrying_ids):
            await self._schedule_retry(task_id)
        for worker_id, worker in list(view.workers.items()):
            if worker.status == "stopped" and view.active.get(worker_id):
                await self._fail_tasks_of(worker_id, f"worker {worker_id} stopped")
            streak = view.infra_streak.get(worker_id, 0)
            if worker.status == "active" and streak >= retry.QUARANTINE_AFTER:
                await self._write(
                    WorkerQuarantined(
                        id=new_id(),
                        at=self.clock(),
                        actor=self.id,
                        worker_id=worker_id,
                        reason=f"{streak} infrastructure failures in a row; a passing health "
                        f"check or `dtf worker enable {worker_id}` puts it back",
                        term=self.term,
                    )
                )
            if worker.status == "quarantined":
                await self._check_health(worker_id)
        workers = free_workers(view)
        if workers and view.queued_ids:  # no free slot: nothing to sort through
            now = self.clock()
            ready = [t for t in view.queued() if t.not_before <= now]
            decisions = self.strategy.schedule(ready, workers)
            await asyncio.gather(*(self._assign(d.task_id, d.worker_id) for d in decisions))
        for task_id, attempt in list(view.losers.items()):
            await self._write(
                TaskCancelled(
                    id=new_id(),
                    at=self.clock(),
                    actor=self.id,
                    task_id=task_id,
                    attempt=attempt,
                    reason="another attempt finished first",
                    term=self.term,
                )
            )
        if not view.queued_ids:
            await self._speculate(free_workers(view))
        for run_id, run in list(view.runs.items()):
            if run.finished is None and view.run_done(run_id):
                await self._write(
                    RunFinished(
                        id=new_id(),
                        at=self.clock(),
                        actor=self.id,
                        run_id=run_id,
                        counts=view.run_counts(run_id),
                        cancelled=run.cancel_requested,
                        term=self.term,
                    )
                )

    async def _check_health(self, worker_id: str) -> None:
        """Queue, assign and judge the health check of a quarantined worker.

        One check per quarantine: when it passes the worker is enabled again; when it fails,
        the worker stays out until an operator enables it.
        """
        view = self.view
        task = view.tasks.get(view.health.get(worker_id, ""))
        quarantined_at = view.workers[worker_id].changed_at
        if task is None or task.queued_at < quarantined_at:
            run_id = f"health-{uuid.uuid4().hex[:8]}"
            await self._write(
                TaskQueued(
                    id=new_id(),
                    at=self.clock(),
                    actor=self.id,
                    task_id=f"{run_id}.0",
                    run_id=run_id,
                    kind="health",
                    timeout=60,
                    max_attempts=1,
                    pinned=worker_id,
                )
            )
        elif task.status == "queued" and not view.active.get(worker_id):
            # Quarantined workers take no ordinary work, so the strategy never sees them.
            await self._assign(task.task_id, worker_id)
        elif task.status == "completed" and task.exit_code == 0:
            await self._write(
                WorkerEnabled(id=new_id(), at=self.clock(), actor=self.id, worker_id=worker_id)
            )

    async def _speculate(self, idle: list[WorkerSlots]) -> None:
        """Give stragglers a second attempt on an idle capable worker (queue empty only).

        A straggler has run longer than STRAGGLER_FACTOR times its expected duration and at
        least `straggler_after` seconds.  The first of the two attempts to finish wins.
        """
        if not idle:
            return
        now = self.clock()
        for task_id in [t for ids in self.view.active.values() for t in ids]:
            task = self.view.tasks[task_id]
            if task.status != "running" or task.spare_attempt:
                continue
            expected = task.spec.expected_duration or 1.0
            if now - task.started_at < max(STRAGGLER_FACTOR * expected, self.straggler_after):
                continue
            elsewhere = [w for w in capable(task, idle) if w.worker_id != task.worker_id]
            if not elsewhere:
                continue
            chosen = max(elsewhere, key=lambda w: (w.free, w.worker_id))
            chosen.free -= 1
            idle = [w for w in idle if w.free > 0]
            log.warning(
                "task %s straggles (%.0fs, expected %.1fs): second attempt on %s",
                task_id,
                now - task.started_at,
                expected,
                chosen.worker_id,
            )
            await self._write(
                TaskSpeculated(
                    id=new_id(),
                    at=now,
                    actor=self.id,
                    task_id=task_id,
                    worker_id=chosen.worker_id,
                    attempt=task.attempt + 1,
                    term=self.term,
                )
            )
            if not idle:
                return

    async def _schedule_retry(self, task_id: str) -> None:
        task = self.view.tasks[task_id]
        self._delayed.add(task_id)
        delay = retry.backoff(task.attempt, self.rng.random())
        worker = self.view.workers.get(task.worker_id)
        escalate = task.category == "infrastructure" and retry.resource_exhaustion(task.message)
        await self._write(
            TaskRetryScheduled(
                id=new_id(),
                at=self.clock(),
                actor=self.id,
                task_id=task_id,
                attempt=task.attempt,
                not_before=self.clock() + delay,
                avoid=tuple(sorted({*task.avoid, task.worker_id} - {""})),
                min_memory_gb=worker.registered.capabilities.memory_gb
                if escalate and worker
                else 0,
                reason=f"{task.category}: {task.message}"[:300],
                term=self.term,
            )
        )

    async def _assign(self, task_id: str, worker_id: str) -> None:
        task = self.view.tasks[task_id]
        await self._write(
            TaskAssigned(
                id=new_id(),
                at=self.clock(),
                actor=self.id,
                task_id=task_id,
                worker_id=worker_id,
                attempt=task.attempt + 1,
                term=self.term,
            )
        )

    async def _write(self, event: AnyEvent) -> bool:
        """Append guarded by the aggregate's last known sequence; apply it at once if stored.

        Applying our own write immediately (with the sequence from the ack) keeps the next
        decision from reusing the slot; when the follower later delivers the same event, the
        View sees its sequence was applied and skips it.
        """
        if not self._leading():
            return False  # the lease lapsed mid-round: stop acting at once
        expected = self.view.versions.get(aggregate_key(event), 0)
        try:
            seq = await self.store.append(event, expected_last_seq=expected)
        except ConcurrencyConflict:
            log.info("stale write skipped: %s", type(event).__name__)
            return False
        except StoreError as exc:
            log.warning("write failed, will retry on the next round: %s", exc)
            await asyncio.sleep(0.2)
            self._wake.set()
            return False
        self.view.apply(event, seq)
        self._wake.set()  # our own write may enable the next decision (a retry, a finish)
        return True
