"""The event store as the coordinator sees it: the few calls it makes, as Protocols.

`dtf.nats.store.EventStore` (JetStream) and `dtf.nats.memory.MemoryStore` (one event loop, no
server) both satisfy them, and `tests/integration/test_store_contract.py` runs the same tests
against both.  Typing the coordinator against `EventLog` instead of the JetStream class is what
lets a test run the real `Coordinator` in-process, in the middle of the test pyramid.

Only what the coordinator calls is here; the worker and the client use more of `EventStore`
(durable consumers, object stores, notes) and keep depending on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

from events.catalogue import AnyEvent
from events.records import Stored

__all__ = ["EventLog", "Follower", "HeartbeatWatch", "Lease", "Subscription"]

Handler = Callable[[Stored], Awaitable[None] | None]


class Subscription(Protocol):
    """Something that delivers until stopped (an answered subject, a followed stream)."""

    async def stop(self) -> None: ...


class Follower(Subscription, Protocol):
    """A followed stream; `caught_up` is set once the history present at start is handled."""

    @property
    def caught_up(self) -> asyncio.Event: ...

    @property
    def last_seq(self) -> int:
        """The sequence of the last message handed to the handler."""
        ...


class Lease(Protocol):
    """One contender's claim on the coordinators' lease (`dtf.nats.lease.Lease`)."""

    @property
    def term(self) -> int:
        """The revision this claim won (0: not leading); written into every leader event."""
        ...

    @property
    def leading(self) -> bool:
        """True only while the lease is held and cannot have lapsed yet."""
        ...

    @property
    def changed(self) -> asyncio.Event:
        """Set whenever leadership was won or lost (the reader clears it)."""
        ...

    async def run(self, stop: asyncio.Event) -> None:
        """Take and renew the lease until `stop`, then give it up."""
        ...


class HeartbeatWatch(Protocol):
    """The heartbeat bucket's puts, one at a time."""

    async def next(self, timeout: float) -> str | None:
        """The worker id of the next heartbeat, or None when none came within `timeout`."""
        ...

    async def stop(self) -> None: ...


class EventLog(Protocol):
    """The event log, the plan subject, the lease and the heartbeats: the coordinator's view
    of the store."""

    async def append(self, event: AnyEvent, expected_last_seq: int | None = None) -> int:
        """Append one event, returning its stream sequence; with `expected_last_seq`, raise
        `ConcurrencyConflict` unless the event's aggregate's last message has exactly it."""
        ...

    async def last_seq(self) -> int:
        """The stream's last sequence (0: empty)."""
        ...

    async def load_snapshot(self) -> bytes | None:
        """The latest snapshot of the coordinators' state, as written (None: none yet)."""
        ...

    async def save_snapshot(self, data: bytes) -> None:
        """Replace that snapshot, whole or not at all."""
        ...

    async def follow(
        self,
        subjects: str | Sequence[str],
        handler: Handler,
        *,
        from_seq: int = 1,
        new_only: bool = False,
    ) -> Follower:
        """Hand every matching message, replayed from `from_seq` then live, to `handler`."""
        ...

    async def serve(
        self, subject: str, queue: str, answer: Callable[[bytes], bytes]
    ) -> Subscription:
        """Answer each request on `subject` with `answer(payload)`, one of `queue` taking it."""
        ...

    async def lease(self, holder_id: str, ttl: float) -> Lease:
        """A claim on the coordinators' lease for `holder_id`; `run` it to compete."""
        ...

    async def watch_heartbeats(self) -> HeartbeatWatch:
        """Every heartbeat put from now on (and the latest of each live key at first)."""
        ...
