"""The worker daemon: registers, keeps a heartbeat, runs its own assignments, reports results.

Assignments arrive on a durable consumer filtered on this worker's id, so one made while the
worker was briefly disconnected is still delivered.  Each slot runs one task at a time;
pytest tasks run in a persistent pytest process per slot (collect once, run node ids on
request), command tasks in a fresh process group.  Writes to a task are guarded by the
sequence of the event the worker last saw on it, so a worker never reports on a task that
was cancelled or given to someone else in the meantime.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
import uuid
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from pathlib import Path

import msgspec

from dtf.bundle import BundleCache
from dtf.core.envelope import new_event
from dtf.core.state import View, refusal
from dtf.errors import BundleError, ConcurrencyConflict, DtfError, StoreError
from dtf.nats.consumer import Consumer, Delivery
from dtf.nats.store import EventStore
from dtf.runner.pytest_session import PytestSession
from dtf.worker.context import WITH_CONTEXT, capture
from dtf.worker.execution import Executor, Slot
from dtf.worker.hardware import detect, load
from dtf.worker.interpreter import Interpreter, probe
from events import topology
from events.api import Heartbeat
from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    Category,
    OfTask,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskResultSuperseded,
    TaskSpeculated,
    TaskStarted,
    WorkerDraining,
    WorkerDrainRequested,
    WorkerLost,
    WorkerRegistered,
    WorkerStopped,
)
from events.codec import Undecodable, read
from events.records import Recorded, Stored
from events.subjects import (
    ROOT,
    assignments_for,
    task_subject,
    worker_subject,
)

log = logging.getLogger(__name__)
# A draining worker idle this long stops even if its consumer still counts work for it.
DRAIN_IDLE_S = 5.0


def default_worker_id() -> str:
    host = re.sub(r"[^A-Za-z0-9_-]", "-", socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:4]}"


def default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "dtf" / "bundles"


@dataclass
class Job:
    """One assignment this worker received, with the sequence to guard its next write."""

    assigned: TaskAssigned | TaskSpeculated
    seq: int
    delivery: Delivery
    spec: TaskQueued | None = None


class Worker:
    """Owns the registration, the heartbeat key, the assignment consumer and N slots."""

    def __init__(
        self,
        store: EventStore,
        *,
        worker_id: str | None = None,
        slots: int = 1,
        labels: tuple[str, ...] = (),
        cache_dir: Path | None = None,
        prewarm: tuple[str, ...] | None = None,
        interpreter: Interpreter | None = None,
        sessions: Sequence[PytestSession] = (),
        simulate_error: tuple[Category, str] | None = None,
        simulate_disconnect: Callable[[], None] | None = None,
    ) -> None:
        """`interpreter` runs the tests and commands (default: the one dtf runs in).

        `prewarm` (pytest arguments) starts every slot's pytest for the project in the current
        directory at once; `sessions` hands the slots sessions started already, for the same
        project (`dtf run` starts its embedded workers' before its server is up).

        For exercising the error pipeline: `simulate_error` (category, message) fails every
        task but health checks as if that error happened here, with the system context a
        real one carries; `simulate_disconnect` is called once, when the first task (not a
        health check) has started here, to cut this worker off its server for a while
        (`dtf.worker.relay`): the task runs on meanwhile.
        """
        self.store = store
        self._prewarm = prewarm
        self.interpreter = interpreter or probe(None)
        self.id = worker_id or default_worker_id()
        self.executor = Executor(
            store,
            self.id,
            self.interpreter,
            BundleCache(cache_dir or default_cache_dir()),
            append_guarded=self._append_guarded,
            publish=self._publish_soon,
        )
        self.slots = [Slot(i) for i in range(max(1, slots, len(sessions)))]
        for slot, session in zip(self.slots, sessions, strict=False):
            self.executor.adopt(slot, session)
        self.labels = labels
        self.jobs: asyncio.Queue[Job] = asyncio.Queue()
        self.running: dict[str, Slot] = {}
        self._background: set[asyncio.Future] = set()  # kept referenced until done
        self._stop = asyncio.Event()
        self.closed = False  # set by `close()`: every loop of this worker ends
        self.caps: Capabilities | None = None
        self.simulate_error = simulate_error
        self.simulate_disconnect = simulate_disconnect

    def _event(self, cls: type, **fields) -> AnyEvent:
        return new_event(cls, self.id, **fields)

    async def _register(self) -> None:
        await self.store.append_retrying(
            self._event(
                WorkerRegistered, worker_id=self.id, capabilities=self.caps, slots=len(self.slots)
            )
        )

    async def run(self, stop: asyncio.Event) -> None:
        """Serve until `stop` is set, then drain: finish what was assigned, take nothing new.

        A `dtf worker drain ID` request sets `stop` too.
        """
        if self._prewarm is not None:
            self.executor.prewarm(self.slots, self._prewarm)
        self.caps = await asyncio.to_thread(
            detect, self.labels, self.interpreter.version, self.executor.cache.root
        )
        self._stop = stop
        # The consumer exists before the registration, so no assignment can precede it.
        sub = await Consumer.resume(
            self.store, self.id, assignments_for(self.id), self._on_assignment
        )
        await self._register()
        await self.store.beat(self.id, self._beat())
        cancels = await self.store.listen(f"{ROOT}.task.*.*.cancelled", self._on_cancel)
        about_me = await self.store.listen(worker_subject(self.id), self._on_about_me)
        log.info("worker %s ready with %d slot(s)", self.id, len(self.slots))
        try:
            async with asyncio.TaskGroup() as group:
                beat = group.create_task(self._heartbeat())
                loops = [group.create_task(self._slot_loop(s, stop)) for s in self.slots]
                await stop.wait()
                # Announcing the drain is worth a short wait, not a long one: when the server
                # is gone for good, the worker must still stop.
                with contextlib.suppress(StoreError):
                    await self.store.append_retrying(
                        self._event(WorkerDraining, worker_id=self.id), within=5
                    )
                await self._drain(sub)
                for loop in loops:
                    loop.cancel()
                beat.cancel()
        finally:
            await cancels.stop()
            await about_me.stop()
            for slot in self.slots:
                await self.executor.release(slot)
        try:
            await self.store.append_retrying(
                self._event(WorkerStopped, worker_id=self.id, reason="drained"), within=5
            )
            await self.store.forget_beat(self.id)
            await sub.delete()
        except StoreError as exc:
            log.warning("cleanup after drain incomplete: %s", exc)

    async def close(self) -> None:
        """End at once, without draining (an embedded run is over): the pytest children are
        killed and every loop stops, even one that missed its cancellation."""
        self.closed = True
        for slot in self.slots:
            await self.executor.release(slot, kill=True)

    def _beat(self) -> bytes:
        cpu, memory = load()
        return msgspec.json.encode(
            Heartbeat(
                time.time(),
                tuple(sorted(self.running)),
                cpu=cpu,
                memory=memory,
                server=self.store.connected_to or "",
            )
        )

    async def _heartbeat(self) -> None:
        # Not `while True`: on Python 3.11 a cancellation can be lost inside nats-py's
        # wait_for (gh-86296), and a worker living in `dtf run` must still end.
        failing = False
        while not self.closed:
            try:
                await self.store.beat(self.id, self._beat())
            except StoreError as exc:
                log.warning("%s", exc)
                failing = True
            else:
                if failing:
                    failing = False
                    # Not awaited: reading the history must not hold the next heartbeats.
                    self._in_background(self._rejoin_if_lost())
            await asyncio.sleep(topology.HEARTBEAT_INTERVAL_S)

    async def _rejoin_if_lost(self) -> None:
        """After an outage, register again if the coordinator declared this worker lost
        meanwhile: that WorkerLost was published while we could not hear it (`_on_about_me`
        listens live), so only the stream tells, and a worker that missed it would beat on,
        alive but never assigned anything again."""
        try:
            history = await self.store.load(worker_subject(self.id), timeout=30)
        except StoreError as exc:
            log.warning("cannot check this worker's standing after an outage: %s", exc)
            return
        view = View()
        for rec in history:
            view.fold(rec)
        state = view.workers.get(self.id)
        if state is not None and state.status == "lost" and not self._stop.is_set():
            log.warning("declared lost while disconnected; registering again")
            await self._register()

    async def _drain(self, sub: Consumer) -> None:
        """Wait until nothing is queued locally, running, or still pending on the consumer.

        The consumer's count is a hint, not a promise: when it still reports work after this
        worker has been idle for DRAIN_IDLE_S, nothing it holds is coming here, and waiting
        longer would only keep SIGTERM from stopping the worker.
        """
        idle_since: float | None = None
        while not self.closed:
            if self.jobs.empty() and not self.running:
                now = time.monotonic()
                idle_since = idle_since or now
                outstanding = await sub.outstanding()
                if not outstanding:  # none, or the consumer cannot be read: done
                    return
                if now - idle_since > DRAIN_IDLE_S:
                    log.warning(
                        "stopping with %d assignment(s) unacknowledged on the consumer",
                        outstanding,
                    )
                    return
            else:
                idle_since = None
            await asyncio.sleep(0.05)

    async def _on_assignment(self, delivery: Delivery) -> None:
        """Runs when the consumer delivers one of this worker's assignments."""
        try:
            event = read(delivery.subject, delivery.data)
        except Undecodable as exc:
            log.warning("ignoring an unreadable assignment on %s: %s", delivery.subject, exc)
            await delivery.ack()
            return
        if not isinstance(event, TaskAssigned | TaskSpeculated) or event.worker_id != self.id:
            await delivery.ack()
            return
        await self.jobs.put(Job(event, delivery.seq, delivery))

    async def _on_about_me(self, subject: str, data: bytes) -> None:
        """Runs on events about this worker: lost (come back: register again), drain asked."""
        try:
            event = read(subject, data)
        except Undecodable:
            return
        if isinstance(event, WorkerLost) and not self._stop.is_set():
            log.warning("declared lost (%s); registering again", event.reason)
            await self._register()
        elif isinstance(event, WorkerDrainRequested):
            log.warning("drain requested by %s", event.actor)
            self._stop.set()

    async def _on_cancel(self, subject: str, data: bytes) -> None:
        """Runs when any task is cancelled; kills it here if this worker is running it."""
        try:
            event = read(subject, data)
        except Undecodable:
            return
        if not isinstance(event, TaskCancelled) or event.task_id not in self.running:
            return
        slot = self.running[event.task_id]
        if event.attempt in (0, slot.attempt):  # the task, or exactly our attempt of it
            slot.cancelled.set()

    async def _slot_loop(self, slot: Slot, stop: asyncio.Event) -> None:
        while not self.closed:
            job = await self.jobs.get()
            slot.task_id = job.assigned.task_id
            slot.cancelled.clear()
            self.running[slot.task_id] = slot
            try:
                await self._run_job(slot, job)
            except DtfError as exc:
                log.error("task %s: %s", job.assigned.task_id, exc)
            except Exception:
                log.exception("task %s: unexpected worker error", job.assigned.task_id)
            finally:
                self.running.pop(slot.task_id, None)
                slot.task_id = ""
                await job.delivery.ack()

    async def _spec(self, task_id: str) -> TaskQueued:
        """The task's TaskQueued: the last message on its `queued` subject, in one request.

        Should something unreadable have been published there since, the task's whole
        history is read instead and its TaskQueued taken from that.
        """
        last = await self.store.last_on(task_subject(task_id, "queued"))
        if (spec := _trusted_spec(last)) is not None:
            return spec
        for rec in await self.store.load(task_subject(task_id), timeout=30):
            if (spec := _trusted_spec(rec)) is not None:
                return spec
        raise StoreError(f"task {task_id} has no readable queued event")

    async def _run_job(self, slot: Slot, job: Job) -> None:
        assigned = job.assigned
        started = self._event(
            TaskStarted, task_id=assigned.task_id, worker_id=self.id, attempt=assigned.attempt
        )
        # Both round trips at once: dispatch latency is what a user waits for on every task.
        reading = asyncio.ensure_future(self._spec(assigned.task_id))
        try:
            slot.attempt = assigned.attempt
            slot.last_seq = job.seq
            slot.last_seq = await self._append_guarded(slot, started)
        except ConcurrencyConflict:
            reading.cancel()
            log.info("task %s moved on before it started here; skipped", assigned.task_id)
            return
        spec = await reading
        if self.simulate_disconnect is not None and spec.kind != "health":
            cut, self.simulate_disconnect = self.simulate_disconnect, None
            cut()
        began = time.monotonic()
        slot.tree.reset()
        try:
            if self.simulate_error and spec.kind != "health":
                category, message = self.simulate_error
                cases = tuple(CaseResult(n, "error", message=message) for n in spec.nodeids)
                result = self.executor.failed(spec, category, message, cases)
            else:
                result = await self.executor.execute(slot, spec)
        except Exception as exc:
            if isinstance(exc, DtfError):
                category = "environment" if isinstance(exc, BundleError) else "infrastructure"
            else:
                log.exception("task %s failed inside the worker", spec.task_id)
                category = "internal"
            cases = tuple(CaseResult(n, "error", message=str(exc)) for n in spec.nodeids)
            result = self.executor.failed(spec, category, str(exc), cases)
        result = msgspec.structs.replace(result, attempt=assigned.attempt)
        if isinstance(result, TaskCompleted):
            result = msgspec.structs.replace(result, duration=time.monotonic() - began)
        elif isinstance(result, TaskFailed) and result.category in WITH_CONTEXT:
            tail = next((c.longrepr for c in result.cases if c.longrepr), "")
            context = await asyncio.to_thread(capture, slot.tree, self.executor.cache.root, tail)
            result = msgspec.structs.replace(result, context=context)
        try:
            # Guarded by this attempt's own last write: any other writer (a coordinator that
            # gave up on the attempt) makes it stale.
            await self._append_guarded(slot, result)
        except ConcurrencyConflict:
            # The attempt was given up on (we were declared lost, or it timed out): the
            # result is not applied, but the audit trail shows it arrived.
            log.warning("result for %s attempt %d superseded", spec.task_id, assigned.attempt)
            await self.store.append_retrying(
                self._event(
                    TaskResultSuperseded,
                    task_id=spec.task_id,
                    worker_id=self.id,
                    attempt=assigned.attempt,
                    outcome=getattr(result, "outcome", "failed"),
                    message=getattr(result, "message", ""),
                )
            )

    async def _append_guarded(self, slot: Slot, event: AnyEvent) -> int:
        """Append an event of this slot's attempt, guarded by the last sequence it knows.

        When the guard fails, someone else wrote to the task: the coordinator (which may have
        given up on this attempt) or a speculative twin of it.  Reload the task and fold it:
        if our attempt is still one whose result counts, retry on the new sequence;
        otherwise the ConcurrencyConflict stands (the attempt was superseded).
        """
        assert isinstance(event, OfTask), event  # an attempt's events are its task's
        task_id = event.task_id
        for _ in range(20):
            try:
                return await self.store.append_retrying(event, expected_last_seq=slot.last_seq)
            except ConcurrencyConflict:
                history = await self.store.load(task_subject(task_id), timeout=30)
                view = View()  # folds as the coordinator does: forged reports do not count
                for rec in history:
                    view.fold(rec)
                state = view.tasks.get(task_id)
                if state is None or slot.attempt not in state.live_attempts:
                    raise
                # The guard counts every message on the task, readable or not.
                slot.last_seq = history[-1].seq
        raise ConcurrencyConflict(task_subject(task_id), slot.last_seq)

    def _publish_soon(self, subject: str, data: bytes) -> None:
        """A core publish (into the log stream, or a note), best-effort: it never blocks a
        task, and a lost one costs a line of output or a step of the progress display."""
        self._in_background(self._publish_best_effort(subject, data))

    def _in_background(self, work: Coroutine[object, object, None]) -> None:
        pending = asyncio.ensure_future(work)
        self._background.add(pending)
        pending.add_done_callback(self._background.discard)

    async def _publish_best_effort(self, subject: str, data: bytes) -> None:
        await self.store.publish_note(subject, data[:65536])


def _trusted_spec(rec: Stored | None) -> TaskQueued | None:
    """The TaskQueued in `rec`, unless it is not one or its signer may not queue tasks: what
    it names is what this worker will run."""
    if not isinstance(rec, Recorded) or not isinstance(rec.event, TaskQueued):
        return None
    if rec.signer is not None and refusal(rec.signer, rec.subject, rec.event, None):
        return None
    return rec.event
