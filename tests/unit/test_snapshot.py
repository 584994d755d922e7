"""Snapshots of the View (`dtf.core.snapshot`): a fold from a snapshot plus the tail equals
the fold of the whole log, at every cut of two recorded logs; anything but a whole snapshot
of this schema is refused."""

from __future__ import annotations

import json
import zlib

import msgspec
import pytest

from dtf.core import snapshot
from dtf.core.state import View
from events.codec import decode
from tests.support.fleet_log import fleet_events
from tests.support.paths import EVENTS_FIXTURE
from tests.support.views import view_state as state


def recorded() -> list[tuple[int, object]]:
    lines = EVENTS_FIXTURE.read_text().splitlines()
    return [(r["seq"], decode(json.dumps(r["event"]).encode())) for r in map(json.loads, lines)]


def fleet() -> list[tuple[int, object]]:
    return list(enumerate(fleet_events(1_000_000.0), start=1))


@pytest.mark.parametrize("forget", [False, True], ids=["keeping", "forgetting finished runs"])
@pytest.mark.parametrize("log", [recorded, fleet], ids=["recorded-session", "fleet"])
def test_snapshot_plus_tail_equals_the_whole_fold(log, forget):
    events = log()
    whole = View(forget_finished=forget)
    for seq, event in events:
        whole.apply(event, seq)
    if forget:  # the finished run's tasks are gone, the rest are there
        assert not any(t.spec.run_id == "run-one" for t in whole.tasks.values())
        assert whole.tasks or log is recorded
    for cut in range(len(events) + 1):
        head = View(forget_finished=forget)
        for seq, event in events[:cut]:
            head.apply(event, seq)
        thawed = snapshot.thaw(snapshot.freeze(head))
        assert thawed is not None
        view, through = thawed
        assert through == head.last_seq
        assert state(view) == state(head), f"thawed at {cut}"
        for seq, event in events[cut:]:
            view.apply(event, seq)
        assert state(view) == state(whole), f"cut at {cut}"


def test_a_snapshot_keeps_unreadable_messages_counted():
    from events.records import Rejected

    view = View()
    view.reject(Rejected(7, "dtf.evt.task.r.1.garbage", "not JSON", 1.0))
    thawed = snapshot.thaw(snapshot.freeze(view, through=5))
    assert thawed is not None and thawed[1] == 5
    thawed = thawed[0]
    assert thawed.versions == {"task:r.1": 7} and thawed.rejected == 1
    assert list(thawed.rejections) == list(view.rejections)


def test_anything_but_a_whole_snapshot_of_this_schema_is_refused():
    view = View()
    for seq, event in fleet():
        view.apply(event, seq)
    good = snapshot.freeze(view)
    assert snapshot.thaw(good) is not None
    torn = good[: len(good) // 2]
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF  # zlib's checksum catches it
    other_schema = snapshot._MAGIC + zlib.compress(
        msgspec.msgpack.encode({**msgspec.msgpack.decode(zlib.decompress(good[8:])), "schema": 0})
    )
    for bad in (b"", b"garbage", torn, bytes(flipped), other_schema, b"dtf-view"):
        assert snapshot.thaw(bad) is None
