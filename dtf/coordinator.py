"""The coordinator: folds the event stream into a View and turns it into decisions.

On start it replays the whole stream, then follows it live.  It assigns queued tasks to
workers with free, capable slots (through a scheduling strategy), declares workers whose
heartbeat stopped lost and fails their tasks, cancels the tasks of a cancelled run, and
closes runs whose tasks are all done.  Every write to a task or run is guarded by that
aggregate's last sequence, so two coordinators acting at once cannot assign a task twice:
the stale write is rejected and the loser records nothing.

Leader-only actions all pass through `_leading()`; issue #3 puts the KV lease behind it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable

import msgspec

from dtf.core.scheduling import Strategy, free_workers
from dtf.core.state import View, aggregate_key
from dtf.errors import ConcurrencyConflict, StoreError
from dtf.store import EventStore, Recorded
from events import topology
from events.catalogue import (
    AnyEvent,
    CaseResult,
    RunFinished,
    TaskAssigned,
    TaskCancelled,
    TaskFailed,
    WorkerLost,
    WorkerRegistered,
)
from events.subjects import ROOT

log = logging.getLogger(__name__)
PLAN_SUBJECT = "dtf.api.plan"


class PlanRequest(msgspec.Struct):
    nodeids: list[str] = []


class PlanReply(msgspec.Struct):
    durations: dict[str, float]
    slots: int
    workers: int


def new_id() -> str:
    return uuid.uuid4().hex


class Coordinator:
    """Owns the View of the stream, the heartbeat clock per worker, and the decision loops."""

    def __init__(
        self,
        store: EventStore,
        strategy: Strategy,
        *,
        coordinator_id: str | None = None,
        lost_after: float = topology.HEARTBEAT_TTL_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.strategy = strategy
        self.id = coordinator_id or f"coordinator-{uuid.uuid4().hex[:8]}"
        self.lost_after = lost_after
        self.clock = clock
        self.view = View()
        self.term = 0
        self.last_beat: dict[str, float] = {}  # worker id -> monotonic time of last heartbeat
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()

    def _leading(self) -> bool:
        """Whether this process may act (always, until issue #3 adds the lease)."""
        return True

    # --- following the stream -----------------------------------------------------------

    def on_record(self, rec: Recorded) -> None:
        """Runs for every event in the stream, replayed or live."""
        if self.view.apply(rec.event, rec.seq) and self._ready.is_set():
            self._react(rec.event)

    def _react(self, event: AnyEvent) -> None:
        match event:
            case WorkerRegistered():
                self.last_beat[event.worker_id] = time.monotonic()
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Replay, then decide until `stop` is set."""
        follower = await self.store.follow(f"{ROOT}.>", self.on_record)
        await follower.caught_up.wait()
        log.info(
            "replayed %d events; %d tasks, %d workers known",
            self.view.last_seq,
            len(self.view.tasks),
            len(self.view.workers),
        )
        now = time.monotonic()
        for worker_id in self.view.workers:
            self.last_beat.setdefault(worker_id, now)  # a grace period for workers we inherit
        self._ready.set()
        self._wake.set()
        api_sub = await self.store.nc.subscribe(
            PLAN_SUBJECT, queue="dtf-coordinators", cb=self._on_plan
        )
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._decide_loop(stop))
                group.create_task(self._heartbeat_loop(stop))
        finally:
            await api_sub.unsubscribe()
            await follower.stop()

    async def _on_plan(self, msg) -> None:
        """Answers `dtf run` before it splits a suite: recorded durations and free capacity."""
        try:
            request = msgspec.json.decode(msg.data, type=PlanRequest)
        except msgspec.DecodeError:
            request = PlanRequest()
        known = self.view.durations
        durations = {n: known[n] for n in request.nodeids if n in known}
        active = [w for w in self.view.workers.values() if w.status == "active"]
        reply = PlanReply(durations, sum(w.slots for w in active), len(active))
        await msg.respond(msgspec.json.encode(reply))

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Track heartbeats from the KV bucket and declare silent workers lost."""
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
                    self.last_beat[entry.key] = time.monotonic()
                await self._declare_lost()
        finally:
            await watcher.stop()

    async def _declare_lost(self) -> None:
        if not self._leading():
            return
        now = time.monotonic()
        for worker_id, worker in list(self.view.workers.items()):
            if worker.status not in ("active", "draining"):
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

    async def _fail_tasks_of(self, worker_id: str, message: str) -> None:
        """Until issue #3 re-queues them, a lost worker's tasks end as errors for their tests."""
        for task_id in list(self.view.active.get(worker_id, ())):
            task = self.view.tasks[task_id]
            cases = tuple(CaseResult(n, "error", message=message) for n in task.spec.nodeids)
            await self._write(
                TaskFailed(
                    id=new_id(),
                    at=self.clock(),
                    actor=self.id,
                    task_id=task_id,
                    worker_id=worker_id,
                    attempt=task.attempt,
                    category="infrastructure",
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
                await asyncio.wait({waking, stopping}, return_when=asyncio.FIRST_COMPLETED)
                waking.cancel()
                self._wake.clear()
                if self._leading() and not stop.is_set():
                    await self.decide_once()
        finally:
            stopping.cancel()

    async def decide_once(self) -> None:
        """One round: cancellations, stopped workers' tasks, assignments, finished runs."""
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
        for worker_id, worker in list(view.workers.items()):
            if worker.status == "stopped" and view.active.get(worker_id):
                await self._fail_tasks_of(worker_id, f"worker {worker_id} stopped")
        queued = view.queued()
        if queued:
            decisions = self.strategy.schedule(queued, free_workers(view))
            await asyncio.gather(*(self._assign(d.task_id, d.worker_id) for d in decisions))
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
        return True
