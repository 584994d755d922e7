"""The event store in memory: `EventLog` on one event loop, no server, time from a clock.

For tests of the services in-process (the coordinator on a `MemoryStore`, events appended by
the test as a client and workers would), where starting nats-server and processes would cost
seconds and make time impossible to control.  It keeps the semantics the coordinator depends
on, as `tests/integration/test_store_contract.py` checks against the real store:

- one global sequence; `append` stores `events.codec.encode(event)` under
  `events.subjects.subject_of(event)`; with `expected_last_seq` it refuses
  (ConcurrencyConflict) unless the last message on the aggregate's wildcard has exactly that
  sequence, garbage included, and only then deduplicates by event id within the window;
- `follow` with NATS wildcards (refusing a filter that covers another, as the server does),
  delivering from its own task, decoding with `events.codec.read` (a message that is not its
  subject's event arrives as a `Rejected`), with `caught_up`, `last_seq` and `rejected` as
  `dtf.nats.store.Follower` has them;
- request/reply; the lease (one holder, a revision per write, the TTL fixed by the first
  claim; in `dtf.nats.memory_lease`); heartbeat keys that expire `heartbeat_ttl` after
  their last put.

Every time-to-live is measured on `clock`, so a test advances time without sleeping.  The
lease renews on the loop's own time, as `dtf.nats.lease` does.  Nothing here imports nats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from dtf.errors import ConcurrencyConflict, DomainError, StoreError
from dtf.nats.claim import Claim
from dtf.nats.memory_lease import LeaderKey
from dtf.nats.protocol import Handler
from events import topology
from events.catalogue import AnyEvent
from events.codec import Undecodable, Unwritable, encode, read
from events.records import Recorded, Rejected, Stored
from events.subjects import aggregate_filter, subject_of

__all__ = ["MemoryStore", "covers", "matches"]

log = logging.getLogger(__name__)


def matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: `*` stands for one token, a final `>` for one or more."""
    want, have = pattern.split("."), subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or token not in ("*", have[i]):
            return False
    return len(want) == len(have)


def covers(wide: str, narrow: str) -> bool:
    """Whether every subject `narrow` matches is matched by `wide` too.

    JetStream refuses consumer filters of which one covers another (two that only intersect
    are allowed, and a message matching both is delivered once).
    """
    x, y = narrow.split("."), wide.split(".")
    for i, token in enumerate(y):
        if token == ">":
            return len(x) > i
        if i >= len(x) or (token == "*" and x[i] == ">") or token not in ("*", x[i]):
            return False
    return len(x) == len(y)


@dataclass(frozen=True, slots=True)
class _Message:
    seq: int
    subject: str
    data: bytes
    stored_at: float


class MemoryFollower:
    """A live subscription: owns its queue of matching messages and the task that hands them
    to the handler in order; `caught_up` once the history present at start is handled."""

    def __init__(
        self, filters: list[str], handler: Handler, drop: Callable[[MemoryFollower], None]
    ) -> None:
        self.caught_up = asyncio.Event()
        self.last_seq = 0
        self.rejected = 0
        self.filters = filters
        self._handler = handler
        self._drop = drop
        self._queue: asyncio.Queue[_Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    def wants(self, subject: str) -> bool:
        return any(matches(f, subject) for f in self.filters)

    def offer(self, message: _Message) -> None:
        self._queue.put_nowait(message)

    def start(self) -> None:
        if self._queue.empty():  # the filters match no history
            self.caught_up.set()
        self._task = asyncio.get_running_loop().create_task(self._deliver())

    async def _deliver(self) -> None:
        while True:
            message = await self._queue.get()
            rec: Stored
            try:
                rec = Recorded(message.seq, message.subject, read(message.subject, message.data))
            except Undecodable as exc:
                self.rejected += 1
                rec = Rejected(message.seq, message.subject, str(exc), message.stored_at)
            try:
                result = self._handler(rec)
                if result is not None:
                    await result
            except Exception:  # as in the real store: a bug in a fold must not stop the stream
                log.exception("handling seq %d (%s) failed", message.seq, message.subject)
            self.last_seq = message.seq
            if self._queue.empty():
                self.caught_up.set()

    async def stop(self) -> None:
        self._drop(self)
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            if task is not asyncio.current_task():  # a handler may stop its own follower
                await asyncio.wait({task})


class _Responder:
    """One member of a queue group answering requests on a subject."""

    def __init__(
        self, subject: str, answer: Callable[[bytes], bytes], drop: Callable[[_Responder], None]
    ) -> None:
        self.subject = subject
        self.answer = answer
        self._drop = drop

    async def stop(self) -> None:
        self._drop(self)


class MemoryHeartbeatWatch:
    """The heartbeat puts (and deletions) from the start of the watch, as `HeartbeatWatch`."""

    def __init__(self, drop: Callable[[MemoryHeartbeatWatch], None]) -> None:
        # (key, value), or None: the end of the initial values, as nats-py marks it.
        self._queue: asyncio.Queue[tuple[str, bytes] | None] = asyncio.Queue()
        self._drop = drop

    def offer(self, item: tuple[str, bytes] | None) -> None:
        self._queue.put_nowait(item)

    async def next(self, timeout: float) -> str | None:
        """The worker id of the next heartbeat put, or None when none came within `timeout`
        (or the next update was a deletion or the end-of-history marker)."""
        try:
            item = await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None
        if item is None or not item[1]:
            return None
        return item[0]

    async def stop(self) -> None:
        self._drop(self)


class MemoryStore:
    """Owns the log (one global sequence), the ids seen in the duplicate window, the
    followers, the responders, the heartbeat keys and their watches, and the leader key."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        heartbeat_ttl: float = topology.HEARTBEATS.ttl_s,
        duplicate_window: float = topology.EVENTS.duplicate_window_s,
    ) -> None:
        self.clock = clock
        self.heartbeat_ttl = heartbeat_ttl
        self.duplicate_window = duplicate_window
        self._log: list[_Message] = []
        self._ids: dict[str, tuple[int, float]] = {}  # event id -> (seq, stored at)
        self._followers: list[MemoryFollower] = []
        self._responders: list[_Responder] = []
        self._beats: dict[str, tuple[bytes, float]] = {}  # worker id -> (value, put at)
        self._watches: list[MemoryHeartbeatWatch] = []
        self._leader: LeaderKey | None = None
        self.snapshot: bytes | None = None

    async def close(self) -> None:
        """Stop every follower still delivering (a test's teardown)."""
        for follower in list(self._followers):
            await follower.stop()

    async def last_seq(self) -> int:
        return self._log[-1].seq if self._log else 0

    async def load_snapshot(self) -> bytes | None:
        return self.snapshot

    async def save_snapshot(self, data: bytes) -> None:
        self.snapshot = data

    # --- writing ------------------------------------------------------------------------

    async def append(self, event: AnyEvent, expected_last_seq: int | None = None) -> int:
        """Append one event; returns its sequence (see `EventStore.append`).

        The guard is checked first, as JetStream does: a retry of a stored event with the
        same guard is a conflict; an unguarded retry of an id seen within the duplicate window
        returns the first sequence and stores nothing.
        """
        subject = subject_of(event)
        try:
            data = encode(event)
        except Unwritable as exc:
            raise DomainError(str(exc)) from None
        await asyncio.sleep(0)  # a publish is a round trip: others run meanwhile
        guard = aggregate_filter(event)
        if expected_last_seq is not None and self._last_on(guard) != expected_last_seq:
            raise ConcurrencyConflict(subject, expected_last_seq)
        now = self.clock()
        seen = self._ids.get(event.id)
        if seen is not None and now - seen[1] < self.duplicate_window:
            return seen[0]
        seq = self._store(subject, data)
        self._ids[event.id] = (seq, now)
        return seq

    async def publish_raw(self, subject: str, data: bytes) -> int:
        """Store bytes on a subject as any client with publish rights could (no id, no guard):
        how a test puts garbage on the stream."""
        await asyncio.sleep(0)
        if not any(matches(p, subject) for p in topology.EVENTS.subjects):
            raise StoreError(f"no stream takes {subject}")
        return self._store(subject, data)

    def _last_on(self, pattern: str) -> int:
        """The sequence of the last message matching `pattern`, 0 when none does."""
        for message in reversed(self._log):
            if matches(pattern, message.subject):
                return message.seq
        return 0

    def _store(self, subject: str, data: bytes) -> int:
        message = _Message(len(self._log) + 1, subject, data, self.clock())
        self._log.append(message)
        for follower in self._followers:
            if follower.wants(subject):
                follower.offer(message)
        return message.seq

    # --- reading ------------------------------------------------------------------------

    async def follow(
        self,
        subjects: str | Sequence[str],
        handler: Handler,
        *,
        from_seq: int = 1,
        new_only: bool = False,
    ) -> MemoryFollower:
        """Replay matching messages from `from_seq` (none with `new_only`), then deliver new
        ones, to `handler`, each a `Recorded` or a `Rejected` (see `EventStore.follow`)."""
        filters = [subjects] if isinstance(subjects, str) else list(subjects)
        pairs = ((a, b) for i, a in enumerate(filters) for j, b in enumerate(filters) if i != j)
        if any(covers(a, b) for a, b in pairs):
            raise StoreError(
                f"cannot follow {', '.join(filters)}: consumer subject filters cannot overlap"
            )
        follower = MemoryFollower(filters, handler, self._drop_follower)
        if not new_only:
            for message in self._log[max(1, from_seq) - 1 :]:
                if follower.wants(message.subject):
                    follower.offer(message)
        self._followers.append(follower)
        follower.start()
        return follower

    def _drop_follower(self, follower: MemoryFollower) -> None:
        with contextlib.suppress(ValueError):
            self._followers.remove(follower)

    # --- request and reply --------------------------------------------------------------

    async def serve(self, subject: str, queue: str, answer: Callable[[bytes], bytes]) -> _Responder:
        """Answer every request on `subject` with `answer(payload)`.  One responder takes each
        request; `queue` names the group, as on NATS, and chooses nothing here."""
        responder = _Responder(subject, answer, self._drop_responder)
        self._responders.append(responder)
        return responder

    def _drop_responder(self, responder: _Responder) -> None:
        with contextlib.suppress(ValueError):
            self._responders.remove(responder)

    async def request(self, subject: str, data: bytes, timeout: float) -> bytes:
        """The first responder's answer; StoreError when nobody serves `subject` or the
        answer failed (at once: a real request would wait out `timeout` first)."""
        await asyncio.sleep(0)
        for responder in self._responders:
            if matches(responder.subject, subject):
                try:
                    return responder.answer(data)
                except Exception:  # the server's side of it: logged, the asker times out
                    log.exception("answering on %s failed", subject)
                    raise StoreError(f"no answer on {subject}: TimeoutError") from None
        raise StoreError(f"no answer on {subject}: NoRespondersError")

    # --- the lease and the heartbeats ---------------------------------------------------

    async def lease(self, holder_id: str, ttl: float) -> Claim:
        """A claim on the one leader key; its TTL is the first claim's (the bucket's)."""
        if self._leader is None:
            self._leader = LeaderKey(ttl, self.clock)
        return Claim(self._leader, holder_id, ttl, self.clock)

    async def beat(self, worker_id: str, data: bytes) -> None:
        """Put a worker's heartbeat; it expires `heartbeat_ttl` after, unless put again."""
        await asyncio.sleep(0)
        self._beats.pop(worker_id, None)  # a put moves the key to the end, as in the stream
        self._beats[worker_id] = (data, self.clock())
        for watch in self._watches:
            watch.offer((worker_id, data))

    async def forget_beat(self, worker_id: str) -> None:
        """Remove a worker's heartbeat at once; watches see a deletion."""
        await asyncio.sleep(0)
        self._beats.pop(worker_id, None)
        for watch in self._watches:
            watch.offer((worker_id, b""))

    async def live_workers(self) -> set[str]:
        """The ids with a heartbeat that has not expired."""
        now = self.clock()
        return {w for w, (_, at) in self._beats.items() if now - at < self.heartbeat_ttl}

    async def watch_heartbeats(self) -> MemoryHeartbeatWatch:
        """Every heartbeat put from now on, after the latest value of each live key."""
        watch = MemoryHeartbeatWatch(self._drop_watch)
        now = self.clock()
        for worker_id, (data, at) in self._beats.items():
            if now - at < self.heartbeat_ttl:
                watch.offer((worker_id, data))
        watch.offer(None)
        self._watches.append(watch)
        return watch

    def _drop_watch(self, watch: MemoryHeartbeatWatch) -> None:
        with contextlib.suppress(ValueError):
            self._watches.remove(watch)
