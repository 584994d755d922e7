"""The coordinators' lease key in memory, for `MemoryStore`: the KV bucket's one key (holder,
revision, TTL on an injected clock).  A `dtf.nats.claim.Claim` on it follows the very rules a
claim on the real bucket does, at the rhythm of the loop's own time, while the key's lifetime
and the claim's validity are measured on the clock, so that a test lapses a lease by moving
the clock.
"""

from __future__ import annotations

from collections.abc import Callable

from dtf.nats.claim import Taken

__all__ = ["LeaderKey"]


class LeaderKey:
    """The lease bucket's one key: who holds it, at which revision, until when.

    The revision counts every write to the bucket, as a JetStream KV revision does; the key
    expires `ttl` after its last write (no limit marker: an expired key can be created again).
    """

    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self.ttl = ttl
        self._clock = clock
        self._last = 0  # the bucket's last revision
        self._holder: bytes | None = None
        self._revision = 0
        self._written_at = 0.0

    def _live(self) -> bool:
        return self._holder is not None and self._clock() - self._written_at < self.ttl

    def _write(self, holder: bytes | None) -> int:
        self._last += 1
        self._holder, self._revision, self._written_at = holder, self._last, self._clock()
        return self._last

    async def create(self, holder: bytes) -> int:
        if self._live():
            raise Taken
        return self._write(holder)

    async def update(self, holder: bytes, last: int) -> int:
        if not self._live() or self._revision != last:
            raise Taken
        return self._write(holder)

    async def delete(self, last: int) -> None:
        if not self._live() or self._revision != last:
            raise Taken
        self._write(None)
