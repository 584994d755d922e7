"""Reading the event stream for the projector: nats-py's ordered push consumer into a buffer.

The callback only appends raw deliveries; decoding and applying happen in batches on the
projector's side.  nats-py spends ~20 us of Python per JetStream message (headers, a Msg
object, a queue hop), which bounds a rebuild here; a hand-written protocol reader measured
~3 us, but dtf does not reimplement its client library (see docs/architecture.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import NamedTuple, Protocol

import nats.errors
import nats.js
import nats.js.api as api
from nats.aio.msg import Msg

from dtf.errors import StoreError
from dtf.store import EventStore, position
from events import topology

log = logging.getLogger(__name__)

READ_CHUNK = 1 << 20
_ACK = b"$JS.ACK."


class Delivered(NamedTuple):
    """One stored message: stream sequence, subject and the raw payload."""

    seq: int
    subject: str
    data: bytes


class Reader(Protocol):
    """What the projector reads from: a buffer of deliveries in stream order."""

    caught_up: asyncio.Event  # set once the stream's end (as of some moment) was delivered
    last_seq: int  # the last stream sequence received

    def buffered(self) -> int: ...

    def take(self, limit: int) -> list[Delivered]: ...

    async def wait(self, count: int, timeout: float) -> None: ...

    async def stop(self) -> None: ...


class _Buffer:
    """The deliveries received and not taken yet, and the waiters for more."""

    def __init__(self, last_seq: int) -> None:
        self.caught_up = asyncio.Event()
        self.last_seq = last_seq
        self._items: list[Delivered] = []
        self._grown = asyncio.Event()

    def buffered(self) -> int:
        return len(self._items)

    def _take(self, limit: int) -> list[Delivered]:
        batch = self._items[:limit]
        del self._items[:limit]
        if not self._items:
            self._grown.clear()
        return batch

    async def wait(self, count: int, timeout: float) -> None:
        """Until `count` deliveries are buffered, the stream is drained, or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while len(self._items) < count:
            left = deadline - time.monotonic()
            if left <= 0 or (self.caught_up.is_set() and self._items):
                return
            self._grown.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._grown.wait(), left)


class NatsPyReader(_Buffer):
    """The buffer fed by nats-py's ordered consumer with a callback (its fastest reader)."""

    def __init__(self, store: EventStore, start_seq: int) -> None:
        super().__init__(start_seq - 1)
        self._store = store
        self._sub: nats.js.JetStreamContext.PushSubscription | None = None

    async def start(self) -> None:
        async def on_msg(msg: Msg) -> None:
            seq, pending = position(msg)
            self._items.append(Delivered(seq, msg.subject, msg.data))
            self.last_seq = seq
            self._grown.set()
            if pending == 0:
                self.caught_up.set()

        config = api.ConsumerConfig(
            deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=self.last_seq + 1
        )
        try:
            self._sub = await self._store.js.subscribe(
                "dtf.evt.>",
                stream=topology.EVENTS_STREAM,
                cb=on_msg,
                ordered_consumer=True,
                config=config,
                pending_msgs_limit=1_000_000,
                pending_bytes_limit=1 << 30,
            )
            info = await self._sub.consumer_info()
        except (nats.errors.Error, TimeoutError) as exc:
            raise StoreError(f"cannot follow the event stream: {exc}") from None
        if info.num_pending == 0 and not (info.delivered and info.delivered.consumer_seq):
            self.caught_up.set()

    def take(self, limit: int) -> list[Delivered]:
        return self._take(limit)

    async def stop(self) -> None:
        if self._sub is not None:
            with contextlib.suppress(Exception):
                await self._sub.unsubscribe()


async def open_reader(store: EventStore, start_seq: int) -> Reader:
    """A started reader of the event stream from `start_seq`."""
    reader = NatsPyReader(store, start_seq)
    await reader.start()
    return reader
