"""JetStream object-store buckets (code bundles, task checkpoints) as a small interface.

Every NATS error becomes a `StoreError` here; a missing object is `None`, not an error.
"""

from __future__ import annotations

import contextlib

import nats.errors
import nats.js.errors
from nats.js import api

from dtf.errors import StoreError
from dtf.nats.refusals import Denials


class ObjectBucket:
    """One object-store bucket, created on first use when it does not exist."""

    def __init__(self, js, name: str, ttl_s: float, replicas: int, denials: Denials) -> None:
        self._js = js
        self._denials = denials  # the connection's refusals
        self.name = name
        self._ttl_s = ttl_s
        self._replicas = replicas
        self._bucket = None

    async def ensure(self) -> None:
        """Create the bucket now if it does not exist."""
        await self._open()

    async def _open(self):
        if self._bucket is None:
            try:
                try:
                    self._bucket = await self._js.object_store(self.name)
                except nats.js.errors.BucketNotFoundError:
                    config = api.ObjectStoreConfig(
                        bucket=self.name, ttl=self._ttl_s, replicas=self._replicas
                    )
                    self._bucket = await self._js.create_object_store(self.name, config=config)
            except (nats.errors.Error, TimeoutError) as exc:
                raise self._denials.explain(exc, f"object store {self.name} unavailable") from None
        return self._bucket

    async def get(self, key: str) -> bytes | None:
        """The object's content, or None when there is no such object."""
        bucket = await self._open()
        try:
            result = await self._denials.unless_refused(bucket.get(key))
        except nats.js.errors.ObjectNotFoundError:
            return None
        except (nats.errors.Error, TimeoutError) as exc:
            raise self._denials.explain(
                exc, f"could not fetch {key[:24]} from {self.name}"
            ) from None
        return result.data or b""

    async def exists(self, key: str) -> bool:
        bucket = await self._open()
        try:
            await bucket.get_info(key)
        except nats.js.errors.ObjectNotFoundError:
            return False
        except (nats.errors.Error, TimeoutError) as exc:
            raise self._denials.explain(exc, f"object store {self.name} unavailable") from None
        return True

    async def put(self, key: str, data: bytes) -> None:
        bucket = await self._open()
        try:
            await self._denials.unless_refused(bucket.put(key, data))
        except (nats.errors.Error, TimeoutError) as exc:
            doing = f"could not store {key[:24]} ({len(data)} bytes) in {self.name}"
            raise self._denials.explain(exc, doing) from None

    async def delete(self, key: str) -> None:
        """Remove the object; nothing happens when it is already gone or unreachable."""
        with contextlib.suppress(nats.errors.Error, TimeoutError, StoreError):
            await (await self._open()).delete(key)
