"""Leadership by lease: one key in a KV bucket whose TTL is the lease length.

Whoever creates the key leads; the revision it won is its term, written into every event it
emits.  The leader renews with compare-and-set on the revision it holds; a renewal that fails
(someone else holds the key, or the server cannot be reached before the lease would lapse)
ends its leadership at once.  Followers try to create the key every `ttl / 8` and win it once
the leader's key has expired.

The bucket has no limit markers: with markers, an expired key leaves a marker and `create`
fails until the marker expires too (nats-server #6712); without them, creating an expired key
works, which `tests/integration/test_lease.py` checks.

The lease alone does not make double assignment impossible (two processes may both believe
they lead for a moment); the per-task expected-sequence check does.  The lease keeps that
moment short and rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

import nats.errors
import nats.js.errors
from nats.js import api

from dtf.errors import StoreError
from events import topology

log = logging.getLogger(__name__)

LEADER_BUCKET = topology.LEADER_BUCKET
LEADER_KEY = topology.LEADER_KEY
DEFAULT_TTL_S = 2.0


async def leader_bucket(js, ttl: float = DEFAULT_TTL_S, replicas: int = 1):
    """The lease bucket, created when missing (its TTL is fixed at creation)."""
    try:
        return await js.key_value(LEADER_BUCKET)
    except nats.js.errors.BucketNotFoundError:
        return await js.create_key_value(
            api.KeyValueConfig(bucket=LEADER_BUCKET, ttl=ttl, history=1, replicas=replicas)
        )


HOLDER_CHARS = 100  # a holder is a coordinator id; anything else in the key is shown cut


async def holder(js) -> str | None:
    """Who holds the lease now (a coordinator's id), or None when nobody leads.

    Raises StoreError when the bucket cannot be read.  Whatever a client put in the key is
    shown as printable text, at most HOLDER_CHARS long.
    """
    try:
        kv = await js.key_value(LEADER_BUCKET)
        entry = await kv.get(LEADER_KEY)
    except nats.js.errors.NotFoundError:  # no bucket, no key, or a deleted or expired key
        return None
    except (nats.errors.Error, TimeoutError) as exc:
        raise StoreError(f"cannot read the lease: {type(exc).__name__}") from None
    if not entry.value:
        return None
    text = entry.value[: HOLDER_CHARS * 4].decode(errors="replace")
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= HOLDER_CHARS else text[: HOLDER_CHARS - 1] + "…"


class Lease:
    """Owns this process's claim: whether it leads, its term and the revision to renew."""

    def __init__(self, kv, holder: str, ttl: float = DEFAULT_TTL_S) -> None:
        self.kv = kv
        self.holder = holder.encode()
        self.ttl = ttl
        self.term = 0
        self._revision = 0
        self._valid_until = 0.0  # monotonic time our lease surely lasts until
        self.changed = asyncio.Event()

    @property
    def leading(self) -> bool:
        """True only while the lease is held and cannot have lapsed on the server yet."""
        return self.term > 0 and time.monotonic() < self._valid_until

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
        sent = time.monotonic()
        try:
            if self.term:
                self._revision = await asyncio.wait_for(
                    self.kv.update(LEADER_KEY, self.holder, last=self._revision), self.ttl / 2
                )
            else:
                self._revision = await asyncio.wait_for(
                    self.kv.create(LEADER_KEY, self.holder), self.ttl / 2
                )
                self.term = self._revision
                log.info("leading with term %d", self.term)
                self.changed.set()
            # Measured from before the request: the server's TTL clock started no earlier.
            self._valid_until = sent + self.ttl * 0.75
        except nats.js.errors.KeyWrongLastSequenceError:
            self._lose("another coordinator holds the lease")
        except (nats.errors.Error, TimeoutError) as exc:
            if self.term and time.monotonic() >= self._valid_until:
                self._lose(f"could not renew: {type(exc).__name__}")

    async def run(self, stop: asyncio.Event) -> None:
        """Keep trying until `stop`; gives the lease up (deletes the key) when leaving."""
        while not stop.is_set():
            await self.step()
            interval = self.ttl / 4 if self.term else self.ttl / 8
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)
        if self.term:
            # A planned handover: the next leader need not wait for the TTL.
            with contextlib.suppress(nats.errors.Error, TimeoutError):
                await asyncio.wait_for(self.kv.delete(LEADER_KEY, last=self._revision), 1)
            self._lose("stopping", expected=True)
