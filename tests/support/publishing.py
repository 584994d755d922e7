"""Publishing many events to a real stream quickly, for tests that need a long history."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from dtf.nats.store import EventStore
from events.catalogue import AnyEvent
from events.codec import encode
from events.subjects import subject_of


async def publish_events(store: EventStore, events: Iterable[AnyEvent]) -> int:
    """Windows of pipelined publishes, each window awaited in order; the last sequence."""
    js = store.nc.jetstream(timeout=30, publish_async_max_pending=8192)
    window: list[asyncio.Future] = []
    for event in events:
        window.append(await js.publish_async(subject_of(event), encode(event)))
        if len(window) >= 4000:
            await asyncio.wait_for(asyncio.gather(*window), 30)
            window.clear()
    await asyncio.wait_for(asyncio.gather(*window), 30)
    return await store.last_seq()
