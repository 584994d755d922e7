"""Deliveries as columns: built from messages, sliced, joined, skipped past a sequence and
sent through msgpack, each message keeping its own signature."""

from __future__ import annotations

import msgspec

from projections.pipeline.frames import Delivered, Deliveries

MESSAGES = [
    Delivered(5, "dtf.evt.run.r.submitted", b"{}"),
    Delivered(6, "dtf.evt.task.r.0.queued", b"{}", signer="alice", role="submitter"),
    Delivered(7, "dtf.evt.task.r.0.completed", b"x", refused="signed by an unknown key"),
    Delivered(9, "dtf.evt.worker.w.registered", b"{}"),
]


def test_columns_hold_the_messages_and_their_signatures() -> None:
    batch = Deliveries.of(MESSAGES)
    assert list(batch) == MESSAGES and len(batch) == 4
    assert batch.signed == {6: ("alice", "submitter", ""), 7: ("", "", "signed by an unknown key")}
    assert list(batch[1:3]) == MESSAGES[1:3] and batch[1:3].signed.keys() == {6, 7}
    assert batch[3:].signed == {}


def test_after_skips_what_was_applied_and_join_restores_the_whole() -> None:
    batch = Deliveries.of(MESSAGES)
    assert list(batch.after(6)) == MESSAGES[2:]
    assert batch.after(4) is batch and len(batch.after(9)) == 0
    joined = Deliveries.join([batch[:1], batch[1:3], batch[3:]])
    assert list(joined) == MESSAGES


def test_a_frame_survives_msgpack() -> None:
    frame = Deliveries.of(MESSAGES)
    frame.caught_up = True
    back = msgspec.msgpack.decode(msgspec.msgpack.encode(frame), type=Deliveries)
    assert list(back) == MESSAGES and back.caught_up
