"""Contract tests of the event store against a real nats-server."""

from __future__ import annotations

import time

import pytest

from dtf.errors import ConcurrencyConflict, ServerUnreachable
from dtf.nats.store import EventStore, Recorded, Rejected, Stored
from events.catalogue import TaskAssigned, TaskQueued, TaskStarted
from events.codec import encode
from events.subjects import task_subject
from tests.support.polling import eventually_async


def queued(task_id: str = "r1.0", eid: str = "e1") -> TaskQueued:
    return TaskQueued(
        id=eid,
        at=time.time(),
        actor="t",
        task_id=task_id,
        run_id="r1",
        kind="pytest",
        nodeids=("a.py::t",),
    )


def assigned(worker: str, eid: str, task_id: str = "r1.0") -> TaskAssigned:
    return TaskAssigned(id=eid, at=time.time(), actor="c", task_id=task_id, worker_id=worker)


async def test_append_and_load_one_aggregate(store: EventStore) -> None:
    s1 = await store.append(queued(), expected_last_seq=0)
    await store.append(queued("r1.1", "other"))
    s2 = await store.append(assigned("w1", "e2"), expected_last_seq=s1)
    history = await store.load(task_subject("r1.0"))
    assert [r.seq for r in history] == [s1, s2]
    assert [type(r.event) for r in history] == [TaskQueued, TaskAssigned]
    assert history[1].subject == "dtf.evt.task.r1.0.assigned.w1"


async def test_stale_write_is_rejected(store: EventStore) -> None:
    s1 = await store.append(queued(), expected_last_seq=0)
    await store.append(assigned("w1", "e2"), expected_last_seq=s1)
    # A second writer that still believes s1 is the latest loses, and nothing is stored.
    with pytest.raises(ConcurrencyConflict):
        await store.append(assigned("w2", "e3"), expected_last_seq=s1)
    history = await store.load(task_subject("r1.0"))
    assert [getattr(r.event, "worker_id", None) for r in history] == [None, "w1"]


async def test_new_aggregate_must_be_empty(store: EventStore) -> None:
    await store.append(queued(), expected_last_seq=0)
    with pytest.raises(ConcurrencyConflict):
        await store.append(queued(eid="again"), expected_last_seq=0)


async def test_assignment_subject_counts_for_the_task(store: EventStore) -> None:
    """The worker-id suffix on assignments is still covered by the task's wildcard."""
    s1 = await store.append(queued(), expected_last_seq=0)
    s2 = await store.append(assigned("w1", "e2"), expected_last_seq=s1)
    started = TaskStarted(id="e3", at=time.time(), actor="w1", task_id="r1.0", worker_id="w1")
    with pytest.raises(ConcurrencyConflict):
        await store.append(started, expected_last_seq=s1)
    assert await store.append(started, expected_last_seq=s2) > s2


async def test_same_message_id_is_stored_once(store: EventStore) -> None:
    event = queued()
    first = await store.append(event)
    again = await store.append(event)
    assert first == again
    assert len(await store.load(task_subject("r1.0"))) == 1


async def test_follow_replays_then_goes_live_and_hands_on_garbage(store: EventStore) -> None:
    await store.append(queued("r1.0", "a"))
    await store.js.publish("dtf.evt.task.r1.9.queued", b"{not json")
    await store.append(queued("r1.1", "b"))
    seen: list[Stored] = []
    follower = await store.follow("dtf.evt.>", seen.append)
    await eventually_async(follower.caught_up.is_set)
    assert [type(r) for r in seen] == [Recorded, Rejected, Recorded]
    assert [r.event.task_id for r in seen if isinstance(r, Recorded)] == ["r1.0", "r1.1"]
    bad = seen[1]
    assert isinstance(bad, Rejected) and bad.subject == "dtf.evt.task.r1.9.queued"
    assert "malformed" in bad.reason and abs(bad.at - time.time()) < 60
    assert follower.rejected == 1
    await store.append(queued("r1.2", "c"))
    await eventually_async(lambda: len(seen) == 4)
    await follower.stop()


@pytest.mark.parametrize(
    ("subject", "data", "reason"),
    [
        ("dtf.evt.task.r1.0.completed", b"x", "malformed"),
        ("dtf.evt.task.r1.0.completed", b'{"a":' * 20_000, "recursion"),
        ("dtf.evt.task.r1.0.completed", b'{"type": "task.completed", "id": 1}', "Expected"),
        ("dtf.evt.task.r1.0.completed", b"\xff" * 7_000_000, "malformed"),
        # A readable event filed under another aggregate's subject.
        ("dtf.evt.task.r1.0.started", encode(queued("r1.5")), "task.queued event of"),
    ],
    ids=["byte", "deep", "schema", "7MB", "misfiled"],
)
async def test_no_message_stops_a_reader(
    store: EventStore, subject: str, data: bytes, reason: str
) -> None:
    """As the last message in the stream, too: `load` still catches up, with it rejected."""
    await store.append(queued("r1.0", "a"))
    await store.js.publish(subject, data)
    history = await store.load("dtf.evt.>", timeout=10)
    assert isinstance(history[-1], Rejected) and reason in history[-1].reason
    assert len(history[-1].reason) <= 300


async def test_follow_on_an_empty_filter_is_caught_up(store: EventStore) -> None:
    follower = await store.follow("dtf.evt.run.nothing.>", lambda r: None)
    assert follower.caught_up.is_set()
    await follower.stop()


async def test_unreachable_server_fails_fast() -> None:
    started = time.monotonic()
    with pytest.raises(ServerUnreachable, match="cannot reach NATS"):
        await EventStore.connect("nats://127.0.0.1:1", timeout=2)
    assert time.monotonic() - started < 10  # a bound on hanging, not a performance goal


def test_position_reads_both_reply_forms() -> None:
    from types import SimpleNamespace

    from dtf.nats.store import position

    v1 = SimpleNamespace(reply="$JS.ACK.DTF_EVENTS.c1.1.42.7.1700000000000000000.5")
    v2 = SimpleNamespace(reply="$JS.ACK.hub.acchash.DTF_EVENTS.c1.1.42.7.1700000000000000000.0.x")
    assert position(v1) == (42, 5)  # type: ignore[arg-type]
    assert position(v2) == (42, 0)  # type: ignore[arg-type]


async def test_the_event_stream_takes_more_consumers_than_the_servers_default(
    nats_server, store: EventStore
) -> None:
    """nats-server 2.15 limits a stream to 1,000 consumers unless it sets a limit: a fleet of
    1,000 workers, one durable consumer each, must not stop there.  A stream made without
    the limit (by an older dtf) is raised when a client connects."""
    from nats.js import api

    from events import topology

    for i in range(1_001):
        await store.js.add_consumer(
            topology.EVENTS_STREAM,
            api.ConsumerConfig(
                durable_name=f"w{i}",
                filter_subject=f"dtf.evt.task.*.*.assigned.w{i}",
                ack_policy=api.AckPolicy.EXPLICIT,
            ),
        )
    info = await store.js.stream_info(topology.EVENTS_STREAM)
    assert info.state.consumer_count == 1_001

    config = info.config
    config.max_consumers = 1_000  # as the server's default reads back
    await store.js.update_stream(config)
    again = await EventStore.connect(nats_server.url, name="later")
    try:
        info = await again.js.stream_info(topology.EVENTS_STREAM)
        assert info.config.max_consumers == topology.MAX_EVENT_CONSUMERS
    finally:
        await again.close()
