"""`dtf.nats.raw.RawClient` against a real nats-server and the installed nats-py: every
message once, in stream order, on the fast path, through a cut connection and with slow
sinks; and a keyed server's signatures still checked."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping

import nats.aio.client
import pytest

from bench.replay import synthetic_events
from dtf.nats.raw import RawClient, sequences
from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from dtf.worker.relay import Relay
from events import topology
from events.codec import encode
from events.subjects import subject_of
from tests.support.polling import eventually_async
from tests.support.publishing import publish_events


class Collected:
    def __init__(self, *, slow_every: int = 0) -> None:
        self.seqs: list[int] = []
        self.datas: list[bytes] = []
        self.headers: list[Mapping[str, str] | None] = []
        self.caught_up = 0
        self._slow_every = slow_every

    async def sink(
        self, seq: int, pending: int, subject: str, data: bytes, headers: Mapping[str, str] | None
    ) -> None:
        assert subject.startswith("dtf.evt.")
        self.seqs.append(seq)
        self.datas.append(data)
        self.headers.append(headers)
        self.caught_up += pending == 0
        if self._slow_every and len(self.seqs) % self._slow_every == 0:
            await asyncio.sleep(0.01)  # a sink that cannot keep up holds the read loop


@pytest.fixture
def base_path_calls(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The reply subjects of the data messages that reach nats-py's own `_process_msg`."""
    calls: list[bytes] = []
    original = nats.aio.client.Client._process_msg

    async def spy(self, sid, subject, reply, data, headers):  # type: ignore[no-untyped-def]
        if reply.startswith(b"$JS.ACK.") and not (headers or b"").startswith(b"NATS/1.0 "):
            calls.append(reply)
        await original(self, sid, subject, reply, data, headers)

    monkeypatch.setattr(nats.aio.client.Client, "_process_msg", spy)
    return calls


def test_sequences_reads_both_reply_forms() -> None:
    assert sequences("$JS.ACK.DTF.c1.1.42.7.1700000000000000000.5") == (42, 7, 5)
    assert sequences("$JS.ACK.hub.ACCHASH.DTF.c1.1.42.7.1700000000000000000.0.tok") == (42, 7, 0)
    assert sequences("_INBOX.abc") is None
    assert sequences("$JS.ACK.DTF.c1.1.x.7.1.5") is None


async def test_every_message_once_in_order_on_the_fast_path(
    store: EventStore, nats_server: LocalServer, base_path_calls: list[bytes]
) -> None:
    last = await publish_events(store, synthetic_events(3000, seed=11))
    raw = await EventStore.connect(nats_server.url, name="raw", client=RawClient)
    got = Collected(slow_every=500)
    try:
        await raw.load_registry()
        await raw.follow_raw(topology.EVENTS.subjects, got.sink, from_seq=1)
        await eventually_async(lambda: got.seqs and got.seqs[-1] >= last, timeout=30)
        more = await publish_events(store, synthetic_events(500, seed=12))  # live ones too
        await eventually_async(lambda: got.seqs[-1] >= more, timeout=30)
    finally:
        await raw.close()
    taken_by_nats_py = list(base_path_calls)
    assert got.seqs == list(range(1, more + 1))
    expected = await store.load(topology.EVENTS.subjects)
    assert [r.seq for r in expected] == got.seqs
    assert got.caught_up >= 1 and set(got.headers) == {None}
    assert taken_by_nats_py == [], "nats-py's own path took data messages: the fast path is off"


async def test_a_cut_connection_loses_and_repeats_nothing(
    store: EventStore, nats_server: LocalServer
) -> None:
    """The connection drops mid-backlog (what was on the wire is lost, so the consumer's
    sequence jumps): the ordered consumer starts again after the last message handed over."""
    relay = Relay(nats_server.url)
    url = await relay.start()
    first = await publish_events(store, synthetic_events(20_000, seed=13))
    raw = await EventStore.connect(url, name="raw", client=RawClient)
    got = Collected(slow_every=2000)
    try:
        await raw.load_registry()
        await raw.follow_raw(topology.EVENTS.subjects, got.sink, from_seq=1)
        await eventually_async(lambda: len(got.seqs) >= 2000, timeout=30)
        relay.cut(1.0)
        last = await publish_events(store, synthetic_events(2000, seed=14))
        await eventually_async(lambda: got.seqs and got.seqs[-1] >= last, timeout=60)
    finally:
        await raw.close()
        await relay.stop()
    assert first < last
    assert got.seqs == list(range(1, last + 1))


async def test_signed_messages_carry_their_headers(
    store: EventStore, nats_server: LocalServer
) -> None:
    """With `headers` the sink gets them parsed, as a signature check needs."""
    js = store.nc.jetstream()
    events = list(synthetic_events(50, seed=15))
    for event in events:
        await js.publish(subject_of(event), encode(event), headers={"Dtf-Test": event.id})
    raw = await EventStore.connect(nats_server.url, name="raw", client=RawClient)
    got = Collected()
    try:
        await raw.follow_raw(topology.EVENTS.subjects, got.sink, headers=True)
        await eventually_async(lambda: len(got.seqs) >= 50, timeout=30)
    finally:
        await raw.close()
    assert [h.get("Dtf-Test") if h else None for h in got.headers] == [e.id for e in events]


async def test_follow_raw_needs_the_raw_client(store: EventStore) -> None:
    with pytest.raises(TypeError, match="RawClient"):
        await store.follow_raw(topology.EVENTS.subjects, Collected().sink)
