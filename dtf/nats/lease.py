"""Leadership by lease: one key in a KV bucket whose TTL is the lease length (the rules are
`dtf.nats.claim`; here the bucket, its key and who holds it).

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

import contextlib
import logging
from collections.abc import Iterator

import nats.errors
import nats.js.errors
from nats.js import api

from dtf.errors import StoreError
from dtf.nats.claim import Taken
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


class KvKey:
    """The lease's key in the JetStream KV bucket, as `dtf.nats.claim.Claim` writes it."""

    def __init__(self, kv) -> None:
        self.kv = kv

    async def create(self, holder: bytes) -> int:
        with _translated():
            return await self.kv.create(LEADER_KEY, holder)

    async def update(self, holder: bytes, last: int) -> int:
        with _translated():
            return await self.kv.update(LEADER_KEY, holder, last=last)

    async def delete(self, last: int) -> None:
        with _translated():
            await self.kv.delete(LEADER_KEY, last=last)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    """nats-py's answers as the claim reads them: a wrong revision is `Taken`, a server that
    cannot be reached a `StoreError`."""
    try:
        yield
    except nats.js.errors.KeyWrongLastSequenceError:
        raise Taken from None
    except nats.errors.Error as exc:
        raise StoreError(type(exc).__name__) from None
