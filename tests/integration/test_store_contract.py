"""One contract, two stores: the real EventStore on a nats-server and the in-memory one.

Each test runs against both (`any_store`): what the coordinator relies on (guarded appends,
the global sequence, following with filters, unreadable messages, request/reply, the lease,
heartbeats) must mean the same on `dtf.nats.memory.MemoryStore` as on JetStream, or tests
that run services in-process would prove nothing.  The tests at the end are the memory store's
alone: its time-to-lives on an injected clock (the real ones are in test_lease.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from dtf.errors import ConcurrencyConflict, StoreError
from dtf.nats.memory import MemoryStore, covers, matches
from dtf.nats.store import EventStore
from events.catalogue import AnyEvent, TaskAssigned, TaskQueued, WorkerLost
from events.codec import encode
from events.records import Recorded, Rejected, Stored
from events.subjects import assignments_for, run_subject, task_subject, worker_subject
from tests.support.clock import ManualClock
from tests.support.polling import eventually_async

Store = EventStore | MemoryStore
WAIT_S = 10.0  # a deadline for what should happen at once, never a measurement


@pytest.fixture
async def memory_store() -> AsyncIterator[MemoryStore]:
    s = MemoryStore()
    yield s
    await s.close()


@pytest.fixture(params=["jetstream", "memory"])
def any_store(request: pytest.FixtureRequest) -> Store:
    """The real store (conftest's `store`, a nats-server per test) or the in-memory one."""
    return request.getfixturevalue("store" if request.param == "jetstream" else "memory_store")


def queued(task_id: str = "r1.0", eid: str = "q0") -> TaskQueued:
    return TaskQueued(
        id=eid, at=time.time(), actor="t", task_id=task_id, run_id="r1", kind="pytest"
    )


def assigned(worker_id: str, eid: str, task_id: str = "r1.0") -> TaskAssigned:
    return TaskAssigned(id=eid, at=time.time(), actor="c", task_id=task_id, worker_id=worker_id)


def lost(worker_id: str, eid: str) -> WorkerLost:
    return WorkerLost(id=eid, at=time.time(), actor="c", worker_id=worker_id)


async def publish_raw(store: Store, subject: str, data: bytes) -> int:
    """Bytes on a subject, as any client with publish rights could put them: no id, no guard."""
    if isinstance(store, MemoryStore):
        return await store.publish_raw(subject, data)
    return (await store.js.publish(subject, data)).seq


class Seen:
    """A handler that keeps what it is handed."""

    def __init__(self) -> None:
        self.records: list[Stored] = []

    def __call__(self, rec: Stored) -> None:
        self.records.append(rec)

    @property
    def seqs(self) -> list[int]:
        return [r.seq for r in self.records]

    @property
    def events(self) -> list[AnyEvent]:
        return [r.event for r in self.records if isinstance(r, Recorded)]


async def caught_up(follower: object) -> None:
    await asyncio.wait_for(follower.caught_up.wait(), WAIT_S)  # type: ignore[attr-defined]


# --- appending --------------------------------------------------------------------------


async def test_one_sequence_for_every_aggregate(any_store: Store) -> None:
    seqs = [
        await any_store.append(queued("r1.0", "a")),
        await any_store.append(lost("w1", "b")),
        await any_store.append(queued("r1.1", "c")),
    ]
    assert seqs == [1, 2, 3]


async def test_a_guarded_append_refuses_a_stale_write(any_store: Store) -> None:
    s1 = await any_store.append(queued(), expected_last_seq=0)
    await any_store.append(queued("r1.1", "other"))  # another aggregate: no effect on the guard
    s2 = await any_store.append(assigned("w1", "a1"), expected_last_seq=s1)
    with pytest.raises(ConcurrencyConflict) as refused:
        await any_store.append(assigned("w2", "a2"), expected_last_seq=s1)
    assert refused.value.expected == s1
    assert refused.value.subject == "dtf.evt.task.r1.0.assigned.w2"
    # The assignment's worker suffix is under the task's wildcard too.
    assert await any_store.append(assigned("w2", "a3"), expected_last_seq=s2) > s2


async def test_a_new_aggregate_must_be_empty(any_store: Store) -> None:
    await any_store.append(queued(), expected_last_seq=0)
    with pytest.raises(ConcurrencyConflict):
        await any_store.append(queued(eid="again"), expected_last_seq=0)


async def test_a_retried_event_is_stored_once_and_a_guarded_retry_conflicts(
    any_store: Store,
) -> None:
    """The same id again (a retry whose ack was lost) gets the first sequence back; but the
    server checks a guard before the id, so a guarded retry is refused as stale."""
    event = queued()
    first = await any_store.append(event, expected_last_seq=0)
    assert await any_store.append(event) == first
    with pytest.raises(ConcurrencyConflict):
        await any_store.append(event, expected_last_seq=0)
    seen = Seen()
    await caught_up(await any_store.follow(task_subject("r1.0"), seen))
    assert seen.seqs == [first]


async def test_garbage_counts_for_the_guard_of_its_subjects_aggregate(any_store: Store) -> None:
    s1 = await any_store.append(queued(), expected_last_seq=0)
    garbage = await publish_raw(any_store, "dtf.evt.task.r1.0.started", b"{not json")
    with pytest.raises(ConcurrencyConflict):
        await any_store.append(assigned("w1", "a1"), expected_last_seq=s1)
    assert await any_store.append(assigned("w1", "a1"), expected_last_seq=garbage) > garbage


# --- following --------------------------------------------------------------------------


async def test_caught_up_at_once_on_an_empty_history_then_live(any_store: Store) -> None:
    seen = Seen()
    follower = await any_store.follow("dtf.evt.>", seen)
    await caught_up(follower)
    assert seen.records == []
    seq = await any_store.append(queued())
    await eventually_async(lambda: seen.seqs == [seq], timeout=WAIT_S)
    assert follower.last_seq == seq
    await follower.stop()


async def test_caught_up_once_the_history_is_handled(any_store: Store) -> None:
    seqs = [await any_store.append(queued(f"r1.{n}", f"q{n}")) for n in range(3)]
    seen = Seen()
    follower = await any_store.follow("dtf.evt.>", seen)
    await caught_up(follower)
    assert seen.seqs == seqs and follower.last_seq == seqs[-1]
    await follower.stop()


async def test_caught_up_at_once_when_the_filter_matches_no_history(any_store: Store) -> None:
    await any_store.append(queued())
    seen = Seen()
    follower = await any_store.follow(worker_subject("w1"), seen)
    await caught_up(follower)
    assert seen.records == []
    await follower.stop()


async def test_follow_from_a_sequence_with_filters(any_store: Store) -> None:
    q0 = await any_store.append(queued("r1.0", "q0"))
    await any_store.append(queued("r1.1", "q1"))
    a0 = await any_store.append(assigned("w1", "a0", "r1.0"))
    await any_store.append(assigned("w2", "a1", "r1.1"))
    l1 = await any_store.append(lost("w1", "l1"))

    whole = Seen()
    await caught_up(await any_store.follow(task_subject("r1.0"), whole))
    assert whole.seqs == [q0, a0]

    later = Seen()
    await caught_up(await any_store.follow(task_subject("r1.0"), later, from_seq=q0 + 1))
    assert later.seqs == [a0]

    mine = Seen()  # `*` for one token: a worker's own assignments, any task
    await caught_up(await any_store.follow(assignments_for("w1"), mine))
    assert mine.seqs == [a0]

    several = Seen()
    await caught_up(await any_store.follow([task_subject("r1.0"), worker_subject("w1")], several))
    assert several.seqs == [q0, a0, l1]

    crossing = Seen()  # filters that intersect: a message matching both comes once
    subjects = [task_subject("r1.0"), "dtf.evt.task.*.0.queued"]
    await caught_up(await any_store.follow(subjects, crossing))
    assert crossing.seqs == [q0, a0]

    with pytest.raises(StoreError, match="overlap"):  # one filter covering another: refused
        await any_store.follow([task_subject("r1.0"), "dtf.evt.task.r1.0.queued"], Seen())


async def test_new_only_skips_the_history(any_store: Store) -> None:
    await any_store.append(queued("r1.0", "q0"))
    seen = Seen()
    follower = await any_store.follow("dtf.evt.>", seen, new_only=True)
    await caught_up(follower)
    seq = await any_store.append(queued("r1.1", "q1"))
    await eventually_async(lambda: seen.seqs == [seq], timeout=WAIT_S)
    await follower.stop()


async def test_unreadable_messages_arrive_rejected_and_counted(any_store: Store) -> None:
    first = await any_store.append(queued("r1.0", "q0"))
    bad = await publish_raw(any_store, "dtf.evt.task.r1.0.completed", b"\xff not json")
    misfiled = await publish_raw(any_store, "dtf.evt.task.r1.0.started", encode(queued("r1.5")))
    last = await any_store.append(queued("r1.1", "q1"))
    seen = Seen()
    follower = await any_store.follow("dtf.evt.>", seen)
    await caught_up(follower)
    assert seen.seqs == [first, bad, misfiled, last]
    rejected = [r for r in seen.records if isinstance(r, Rejected)]
    assert [(r.seq, r.subject) for r in rejected] == [
        (bad, "dtf.evt.task.r1.0.completed"),
        (misfiled, "dtf.evt.task.r1.0.started"),
    ]
    assert "malformed" in rejected[0].reason and "task.queued event of" in rejected[1].reason
    assert all(r.at > 0 for r in rejected)
    assert follower.rejected == 2 and follower.last_seq == last
    await follower.stop()


async def test_a_handler_that_raises_does_not_stop_the_follower(any_store: Store) -> None:
    seqs = [await any_store.append(queued(f"r1.{n}", f"q{n}")) for n in range(2)]
    handled: list[int] = []

    async def handler(rec: Stored) -> None:
        handled.append(rec.seq)
        if rec.seq == seqs[0]:
            raise RuntimeError("a bug in a fold")

    follower = await any_store.follow("dtf.evt.>", handler)
    await caught_up(follower)
    assert handled == seqs and follower.last_seq == seqs[-1]
    await follower.stop()


async def test_a_stopped_follower_is_handed_nothing_more(any_store: Store) -> None:
    seen = Seen()
    follower = await any_store.follow("dtf.evt.>", seen)
    await caught_up(follower)
    await follower.stop()
    await any_store.append(queued())
    probe = Seen()  # a second follower seeing the event means the first had its chance
    await caught_up(await any_store.follow("dtf.evt.>", probe))
    assert len(probe.records) == 1 and seen.records == []


# --- request and reply ------------------------------------------------------------------


async def test_a_request_is_answered_until_the_server_stops(any_store: Store) -> None:
    served = await any_store.serve("dtf.api.test", "group", lambda data: data[::-1])
    assert await any_store.request("dtf.api.test", b"abc", timeout=WAIT_S) == b"cba"
    await served.stop()
    with pytest.raises(StoreError, match=r"no answer on dtf\.api\.test"):
        await any_store.request("dtf.api.test", b"abc", timeout=1.0)


# --- the lease --------------------------------------------------------------------------


async def test_one_holder_at_a_time_and_a_handover(any_store: Store) -> None:
    first = await any_store.lease("c1", ttl=30.0)
    second = await any_store.lease("c2", ttl=30.0)
    await first.step()
    await second.step()
    assert first.leading and first.term > 0 and first.changed.is_set()
    assert not second.leading and second.term == 0
    term = first.term
    await first.step()  # a renewal keeps the term
    assert first.leading and first.term == term
    stop = asyncio.Event()
    stop.set()
    await first.run(stop)  # leaving: gives the lease up at once, no TTL to wait out
    assert not first.leading and first.term == 0
    await second.step()
    assert second.leading and second.term > term


# --- heartbeats -------------------------------------------------------------------------


async def next_beat(watch: object) -> str:
    """The next worker id the watch reports, over the end-of-history marker."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        worker_id = await watch.next(timeout=1.0)  # type: ignore[attr-defined]
        if worker_id is not None:
            return worker_id
    raise AssertionError("no heartbeat reported")


async def test_heartbeats_are_watched_and_forgotten(any_store: Store) -> None:
    await any_store.beat("w1", b'{"at": 1}')
    watch = await any_store.watch_heartbeats()
    assert await next_beat(watch) == "w1"  # the latest of each live key, first
    await any_store.beat("w2", b'{"at": 2}')
    assert await next_beat(watch) == "w2"
    assert await any_store.live_workers() == {"w1", "w2"}
    await any_store.forget_beat("w1")
    assert await any_store.live_workers() == {"w2"}
    assert await watch.next(timeout=WAIT_S) is None  # a deletion names no live worker
    await watch.stop()


# --- the memory store alone: time on an injected clock ----------------------------------


async def test_memory_heartbeats_expire_on_the_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock, heartbeat_ttl=2.0)
    await store.beat("w1", b"x")
    clock.advance(1.0)
    await store.beat("w2", b"x")
    clock.advance(1.0)
    assert await store.live_workers() == {"w2"}
    watch = await store.watch_heartbeats()
    assert await watch.next(timeout=WAIT_S) == "w2"  # the expired key is not replayed
    assert await watch.next(timeout=WAIT_S) is None  # the end of the initial values


async def test_memory_lease_lapses_on_the_clock_and_the_old_holder_learns_it() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock)
    first = await store.lease("c1", ttl=2.0)
    second = await store.lease("c2", ttl=2.0)
    await first.step()
    clock.advance(1.5)  # past 3/4 of the TTL: the holder may no longer act
    assert first.term and not first.leading
    await second.step()
    assert second.term == 0  # the key itself lives until the TTL
    clock.advance(0.5)
    await second.step()
    assert second.leading
    await first.step()  # its renewal is refused: someone else won the key
    assert first.term == 0 and not first.leading


async def test_memory_duplicate_window_is_on_the_clock() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock, duplicate_window=120.0)
    event = queued()
    first = await store.append(event)
    clock.advance(119.0)
    assert await store.append(event) == first
    clock.advance(2.0)
    assert await store.append(event) > first


async def test_memory_refuses_subjects_outside_the_event_stream() -> None:
    store = MemoryStore()
    with pytest.raises(StoreError):
        await store.publish_raw("dtf.api.plan", b"x")
    assert await store.publish_raw(run_subject("r1", "submitted"), b"x") == 1


@pytest.mark.parametrize(
    ("wide", "narrow", "expected"),
    [
        ("dtf.evt.task.r1.0.>", "dtf.evt.task.r1.0.queued", True),
        ("dtf.evt.>", "dtf.evt.task.*.0.>", True),
        ("dtf.evt.task.*.0.>", "dtf.evt.task.r1.0.queued", True),
        ("dtf.evt.task.r1.0.queued", "dtf.evt.task.r1.0.queued", True),
        ("dtf.evt.task.r1.0.>", "dtf.evt.task.*.0.queued", False),  # they only intersect
        ("dtf.evt.task.*.0.queued", "dtf.evt.task.r1.0.>", False),
        ("dtf.evt.task.*.*", "dtf.evt.task.r1.>", False),
        ("dtf.evt.task.r1.0.>", "dtf.evt.task.r1.0", False),
        ("dtf.evt.task.r1.0.>", "dtf.evt.worker.w1.>", False),
    ],
)
def test_memory_filter_covers(wide: str, narrow: str, expected: bool) -> None:
    assert covers(wide, narrow) is expected


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("dtf.evt.>", "dtf.evt.task.r1.0.queued", True),
        ("dtf.evt.>", "dtf.evt", False),  # `>` needs at least one token
        ("dtf.evt.task.*.*.assigned.w1", "dtf.evt.task.r1.0.assigned.w1", True),
        ("dtf.evt.task.*.*.assigned.w1", "dtf.evt.task.r1.0.assigned.w10", False),
        ("dtf.evt.task.*.*.assigned.w1", "dtf.evt.task.r1.assigned.w1", False),
        ("dtf.evt.task.r1.0.>", "dtf.evt.task.r1.0", False),
        ("dtf.evt.task.r1.0.queued", "dtf.evt.task.r1.0.queued", True),
        ("dtf.evt.task.r1.0.queued", "dtf.evt.task.r1.0.queued.x", False),
    ],
)
def test_memory_subject_wildcards(pattern: str, subject: str, expected: bool) -> None:
    assert matches(pattern, subject) is expected
