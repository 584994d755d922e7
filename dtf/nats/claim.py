"""One contender's claim on the coordinators' lease, whatever holds the key.

The rules of `dtf.nats.lease` (create the key to win, its revision is the term; renew with
compare-and-set on the revision held; a renewal refused, or impossible before the lease would
lapse, ends leadership at once; delete the key to hand over) written once, over a `LeaseKey`:
the JetStream KV key (`dtf.nats.lease.KvKey`) or the in-memory one (`dtf.nats.memory_lease`).
Nothing here imports nats, so the in-memory store runs these very rules.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Protocol

from dtf.errors import StoreError

log = logging.getLogger(__name__)


class Taken(Exception):
    """The key is not at the revision the write expected: someone else holds it."""


class LeaseKey(Protocol):
    """The one key a lease is held on; a write refused raises `Taken`, a store that cannot be
    reached `StoreError` or `TimeoutError`."""

    async def create(self, holder: bytes) -> int: ...

    async def update(self, holder: bytes, last: int) -> int: ...

    async def delete(self, last: int) -> None: ...


class Claim:
    """Owns this process's claim: whether it leads, its term and the revision to renew.

    `clock` measures how long a renewal lasts (monotonic seconds; a test may move its own).
    """

    def __init__(
        self,
        key: LeaseKey,
        holder: str,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.key = key
        self.holder = holder.encode()
        self.ttl = ttl
        self.clock = clock
        self.term = 0
        self._revision = 0
        self._valid_until = 0.0  # the time our lease surely lasts until
        self.changed = asyncio.Event()

    @property
    def leading(self) -> bool:
        """True only while the lease is held and cannot have lapsed on the server yet."""
        return self.term > 0 and self.clock() < self._valid_until

    def _lose(self, why: str, *, expected: bool = False) -> None:
        if self.term:
            (log.info if expected else log.warning)(
                "leadership (term %d) ended: %s", self.term, why
            )
        self.term = 0
        self._revision = 0
        self.changed.set()

    async def step(self) -> None:
        """One attempt: renew when leading, otherwise try to take the lease."""
        sent = self.clock()
        try:
            if self.term:
                self._revision = await asyncio.wait_for(
                    self.key.update(self.holder, self._revision), self.ttl / 2
                )
            else:
                self._revision = await asyncio.wait_for(self.key.create(self.holder), self.ttl / 2)
                self.term = self._revision
                log.info("leading with term %d", self.term)
                self.changed.set()
            # Measured from before the request: the server's TTL clock started no earlier.
            self._valid_until = sent + self.ttl * 0.75
        except Taken:
            self._lose("another coordinator holds the lease")
        except (StoreError, TimeoutError) as exc:
            if self.term and self.clock() >= self._valid_until:
                self._lose(f"could not renew: {exc or type(exc).__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        """Keep trying until `stop`; gives the lease up (deletes the key) when leaving."""
        while not stop.is_set():
            await self.step()
            interval = self.ttl / 4 if self.term else self.ttl / 8
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        if self.term:
            # A planned handover: the next leader need not wait for the TTL.
            with contextlib.suppress(Taken, StoreError, TimeoutError):
                await asyncio.wait_for(self.key.delete(self._revision), 1)
            self._lose("stopping", expected=True)
