"""The coordinator: folds the event stream into a View and writes what the core decides.

On start it loads the newest snapshot of the folded state (`dtf.core.snapshot`, written by
the leader as the stream grows) and replays only the stream after it, or the whole stream
when there is no trustworthy snapshot; then it follows the stream live, so a follower's
state is hot when it takes over.  Only the holder of the lease (`dtf.nats.lease`) decides.
What it decides is the core's (`dtf.core.decisions`: assignments through a scheduling
strategy, retries with backoff, quarantines and health checks, cancellations, speculative
attempts for stragglers, finished runs, lost workers and backstop timeouts); this shell keeps
the heartbeat clocks, wakes the rules when something changed, appends what they return, and
snapshots the View.

Every write to a task or run is guarded by that aggregate's last sequence, so two
coordinators that both believe they lead cannot assign a task twice: the stale write is
rejected and the loser records nothing.  Every event it writes carries its lease term.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
import uuid
from collections.abc import Callable

import msgspec

from dtf.core import decisions, snapshot
from dtf.core.decisions import STRAGGLER_AFTER_S
from dtf.core.requirements import never_offered
from dtf.core.scheduling import Strategy
from dtf.core.state import View
from dtf.errors import ConcurrencyConflict, StoreError
from dtf.nats.lease import DEFAULT_TTL_S
from dtf.nats.protocol import EventLog, Follower, Lease
from events import topology
from events.api import PLAN_SUBJECT, PlanReply, PlanRequest
from events.catalogue import (
    AnyEvent,
    TaskAssigned,
    TaskRetryScheduled,
    TaskSpeculated,
    WorkerLost,
    WorkerRegistered,
)
from events.records import Rejected, Stored
from events.subjects import ROOT

log = logging.getLogger(__name__)
REJECTIONS_LOGGED = 5  # unreadable messages logged one by one, before one in a hundred


def new_id() -> str:
    return uuid.uuid4().hex


class Coordinator:
    """Owns the View of the stream, the lease, the heartbeat clock per worker, the loops."""

    def __init__(
        self,
        store: EventLog,
        strategy: Strategy,
        *,
        coordinator_id: str | None = None,
        lost_after: float = topology.HEARTBEAT_TTL_S,
        lease_ttl: float = DEFAULT_TTL_S,
        straggler_after: float = STRAGGLER_AFTER_S,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        snapshot_every: int = snapshot.EVERY,
        snapshot_interval: float = snapshot.INTERVAL_S,
    ) -> None:
        self.store = store
        self.strategy = strategy
        self.id = coordinator_id or f"coordinator-{uuid.uuid4().hex[:8]}"
        self.lost_after = lost_after
        self.lease_ttl = lease_ttl
        self.straggler_after = straggler_after
        self.clock = clock  # event times and retry backoffs (epoch seconds)
        self.monotonic = monotonic  # heartbeat silences: immune to the wall clock's jumps
        self.rng = rng or random.Random()
        self.view = View(forget_finished=True)
        self.lease: Lease | None = None
        self.last_beat: dict[str, float] = {}  # worker id -> monotonic time of last heartbeat
        self.last_any_beat = self.monotonic()  # the last heartbeat of any worker
        self._wake = asyncio.Event()
        self._ready = asyncio.Event()
        self._delayed: set[str] = set()  # queued tasks waiting out a retry backoff
        self._rules = decisions.round_rules(strategy, straggler_after)
        self.snapshot_every = snapshot_every  # 0: never write one
        self.snapshot_interval = snapshot_interval
        self.snapshot_seq = 0  # the sequence the newest snapshot known here is whole through
        self._snapshot_at = -float("inf")
        self._follower: Follower | None = None

    @property
    def term(self) -> int:
        return self.lease.term if self.lease else 0

    def _leading(self) -> bool:
        return self.lease is not None and self.lease.leading

    # --- following the stream -----------------------------------------------------------

    def on_record(self, rec: Stored) -> None:
        """Runs for every message in the stream, replayed or live."""
        rec = self.view.admit(rec)  # an event its signer may not have written is rejected
        if isinstance(rec, Rejected):
            self.view.reject(rec)
            if self._ready.is_set():
                self._report_rejection(rec)
                # A write refused because of this message can be retried on its sequence now.
                self._wake.set()
            return
        if self.view.apply(rec.event, rec.seq) and self._ready.is_set():
            if isinstance(rec.event, WorkerRegistered):
                self.last_beat[rec.event.worker_id] = self.monotonic()
            self._wake.set()

    def _report_rejection(self, rec: Rejected) -> None:
        """One warning for each of the first few rejected messages, then one per hundred."""
        count = self.view.rejected
        if count <= REJECTIONS_LOGGED or count % 100 == 0:
            log.warning(
                "rejected message at seq %d on %s (%s); %d so far",
                rec.seq,
                rec.subject,
                rec.reason,
                count,
            )

    async def run(self, stop: asyncio.Event) -> None:
        """Replay, then compete for the lease and decide while leading, until `stop`."""
        start = await self._restore()
        follower = await self.store.follow(f"{ROOT}.>", self.on_record, from_seq=start)
        self._follower = follower
        await follower.caught_up.wait()
        log.info(
            "replayed seq %d to %d; %d tasks, %d workers known, %d unreadable messages",
            start,
            self.view.last_seq,
            len(self.view.tasks),
            len(self.view.workers),
            self.view.rejected,
        )
        now = self.monotonic()
        for worker_id in self.view.workers:
            self.last_beat.setdefault(worker_id, now)  # a grace period for workers we inherit
        self._ready.set()
        self.lease = await self.store.lease(self.id, self.lease_ttl)
        api_sub = await self.store.serve(PLAN_SUBJECT, "dtf-coordinators", self._plan)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self.lease.run(stop))
                group.create_task(self._relay_lease_changes(stop))
                group.create_task(self._decide_loop(stop))
                group.create_task(self._heartbeat_loop(stop))
                group.create_task(self._snapshot_loop(stop))
        finally:
            await api_sub.stop()
            await follower.stop()

    # --- snapshots ----------------------------------------------------------------------

    async def _restore(self) -> int:
        """Take the newest snapshot's View if it can be trusted; the sequence to follow from.

        One that does not decode, names another schema, or claims more of the stream than
        the stream holds (a stream made anew) is ignored: the whole stream is replayed.
        """
        try:
            data = await self.store.load_snapshot()
            last = await self.store.last_seq() if data is not None else 0
        except StoreError as exc:
            log.warning("no snapshot read (%s); replaying the whole stream", exc)
            return 1
        if data is None:
            return 1
        thawed = snapshot.thaw(data)
        if thawed is None:
            log.warning("ignoring a snapshot that is torn or of another schema; replaying all")
            return 1
        view, through = thawed
        if through > last:
            log.warning(
                "ignoring a snapshot through seq %d of a stream that ends at %d; replaying all",
                through,
                last,
            )
            return 1
        view.forget_finished = True
        self.view = view
        self.snapshot_seq = through
        log.info("starting from the snapshot through seq %d (%d tasks)", through, len(view.tasks))
        return through + 1

    async def _snapshot_loop(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1.0)
            if self._leading() and not stop.is_set():
                await self.snapshot_if_due()

    async def snapshot_if_due(self) -> bool:
        """Write a snapshot when enough of the stream came since the last; True if written.

        Frozen on the event loop, between two folds: the View is whole there.  Tagged with
        what the follower delivered, not with the View's own last write, which may be ahead.
        """
        if self._follower is None or not self.snapshot_every:
            return False
        through = self._follower.last_seq
        due = through - self.snapshot_seq >= self.snapshot_every
        if not due or self.monotonic() - self._snapshot_at < self.snapshot_interval:
            return False
        self._snapshot_at = self.monotonic()
        started = time.perf_counter()
        data = snapshot.freeze(self.view, through)
        try:
            await self.store.save_snapshot(data)
        except StoreError as exc:
            log.warning("snapshot not written: %s", exc)
            return False
        self.snapshot_seq = through
        log.info(
            "snapshot through seq %d: %d tasks, %.1f MB, %.2f s",
            through,
            len(self.view.tasks),
            len(data) / 1e6,
            time.perf_counter() - started,
        )
        return True

    async def _relay_lease_changes(self, stop: asyncio.Event) -> None:
        assert self.lease is not None
        while not stop.is_set():
            try:
                await asyncio.wait_for(self.lease.changed.wait(), 0.5)
            except TimeoutError:
                continue
            self.lease.changed.clear()
            self._wake.set()

    def _plan(self, data: bytes) -> bytes:
        """Answers `dtf run` before it splits a suite: recorded durations, free capacity, and
        which of its requirements no worker that ever registered has met."""
        try:
            request = msgspec.json.decode(data, type=PlanRequest)
        except (msgspec.DecodeError, RecursionError):  # garbage gets the answer for no tests
            request = PlanRequest()
        known = self.view.durations
        durations = {n: known[n] for n in request.nodeids if n in known}
        active = [w for w in self.view.workers.values() if w.status == "active"]
        offered = (w.registered.capabilities for w in self.view.workers.values())
        reply = PlanReply(
            durations,
            sum(w.slots for w in active),
            len(active),
            never_offered=never_offered(offered, request.requirements),
        )
        return msgspec.json.encode(reply)

    async def _heartbeat_loop(self, stop: asyncio.Event) -> None:
        """Track heartbeats from the KV bucket; declare silent workers and stuck tasks lost."""
        watcher = await self.store.watch_heartbeats()
        period = self.lost_after / 4
        checked = -float("inf")
        try:
            while not stop.is_set():
                worker_id = await watcher.next(timeout=period)
                now = self.monotonic()
                if worker_id is not None:
                    self._beat(worker_id, now)
                # Every quarter of the TTL, not at every heartbeat: each check looks at every
                # worker, and 1,000 workers beat 2,000 times a second (bench/scale.py).
                if self._leading() and now - checked >= period:
                    checked = now
                    await self._declare_lost()
                    await self._backstop_timeouts()
                    if self.view.active:  # (it holds no empty sets)
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
        now = self.monotonic()
        if now - self.last_any_beat > self.lost_after:
            # Blind, not bereaved: while no heartbeat at all arrives, silence says nothing
            # about any one worker.  If they are really all gone, the first heartbeat of a
            # new worker restarts the clocks and the dead are declared lost after the TTL.
            return
        silent_for = {w: now - self.last_beat.get(w, now) for w in self.view.workers}
        for event in decisions.lost_workers(self.view, self._stamp(), silent_for, self.lost_after):
            if isinstance(event, WorkerLost):
                log.warning("worker %s lost: %s", event.worker_id, event.reason)
            await self._write(event)

    async def _backstop_timeouts(self) -> None:
        for event in decisions.backstop_timeouts(self.view, self._stamp()):
            await self._write(event)

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
        at = decisions.next_retry_at(self.view, self._delayed)
        return None if at is None else max(0.01, at - self.clock())

    async def decide_once(self) -> None:
        """One round of the core's rules (`decisions.round_rules`), each rule's events
        written (and folded in) before the next rule looks at the View."""
        for rule in self._rules:
            events = rule(self.view, self._stamp())
            if events and all(isinstance(e, TaskAssigned) for e in events):
                # Assignments of one round touch different tasks: out together, for the
                # dispatch latency every task waits for.
                await asyncio.gather(*(self._write(e) for e in events))
                continue
            for event in events:
                if isinstance(event, TaskRetryScheduled):
                    self._delayed.add(event.task_id)
                elif isinstance(event, TaskSpeculated):
                    log.warning(
                        "task %s straggles: second attempt on %s", event.task_id, event.worker_id
                    )
                await self._write(event)

    def _stamp(self) -> decisions.Stamp:
        return decisions.Stamp(self.clock(), self.id, self.term, new_id, self.rng.random)

    async def _write(self, event: AnyEvent) -> bool:
        """Append guarded by the aggregate's last known sequence; apply it at once if stored.

        Applying our own write immediately (with the sequence from the ack) keeps the next
        decision from reusing the slot; when the follower later delivers the same event, the
        View sees its sequence was applied and skips it.
        """
        if not self._leading():
            return False  # the lease lapsed mid-round: stop acting at once
        expected = self.view.versions.get(event.key, 0)
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
