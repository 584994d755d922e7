"""Leadership by lease against a real nats-server: takeover after expiry, handover, fencing,
and reading who leads."""

from __future__ import annotations

import asyncio

from dtf.client.run import _cluster_state, stall_notice
from dtf.nats.claim import Claim
from dtf.nats.lease import LEADER_KEY, KvKey, holder, leader_bucket
from dtf.nats.store import EventStore
from tests.support.polling import eventually_async

TTL = 1.0


async def test_one_leader_then_takeover_after_expiry(store: EventStore) -> None:
    kv = await leader_bucket(store.js, TTL)
    a, b = Claim(KvKey(kv), "a", TTL), Claim(KvKey(kv), "b", TTL)
    await asyncio.gather(a.step(), b.step())
    assert [a.leading, b.leading].count(True) == 1  # created at the same instant: one wins
    leader, follower = (a, b) if a.leading else (b, a)
    first_term = leader.term
    await leader.step()  # renewal keeps the term
    assert leader.leading and leader.term == first_term
    # The leader dies (stops renewing).  The key expires on the server and the follower's
    # plain create succeeds: no limit markers, so nats-server #6712 does not bite.
    await eventually_async(lambda: not leader.leading, timeout=5)

    async def took_over() -> bool:
        await follower.step()
        return follower.leading

    deadline = asyncio.get_running_loop().time() + 10
    while not await took_over():
        assert asyncio.get_running_loop().time() < deadline, "follower never took over"
        await asyncio.sleep(TTL / 8)
    assert follower.term > first_term
    # The old leader wakes up: its renewal fails on the revision check, it stays out.
    await leader.step()
    assert not leader.leading and follower.leading


async def test_planned_handover_is_immediate(store: EventStore) -> None:
    kv = await leader_bucket(store.js, TTL)
    a, b = Claim(KvKey(kv), "a", TTL), Claim(KvKey(kv), "b", TTL)
    stop = asyncio.Event()
    running = asyncio.create_task(a.run(stop))
    await eventually_async(lambda: a.leading, timeout=5)
    stop.set()
    await running
    assert not a.leading
    await b.step()  # the key was deleted on the way out: no TTL wait
    assert b.leading and b.term > 0
    entry = await kv.get(LEADER_KEY)
    assert entry.value == b"b"


async def test_a_stalled_run_is_told_what_is_missing(store: EventStore) -> None:
    """`dtf run` reads who leads and which workers beat to say why nothing moves."""
    assert await holder(store.js) is None
    assert await _cluster_state(store) == (None, 0)
    assert "no coordinator is running" in stall_notice(3, None, 0)

    kv = await leader_bucket(store.js, TTL)
    lease = Claim(KvKey(kv), "coord-7", TTL)
    await lease.step()
    assert await _cluster_state(store) == ("coord-7", 0)
    assert "no worker is alive" in stall_notice(3, "coord-7", 0)

    await (await store.heartbeats()).put("w1", b"{}")
    assert await _cluster_state(store) == ("coord-7", 1)
    assert "required hardware" in stall_notice(3, "coord-7", 1)

    await kv.delete(LEADER_KEY)  # a planned handover leaves a delete marker
    assert await holder(store.js) is None
