"""Deliveries as columns: built from messages, sliced, joined, skipped past a sequence and
sent through msgpack, each message keeping its own signature."""

from __future__ import annotations

import asyncio
import os

import msgspec
import pytest

from dtf.errors import StoreError
from dtf.nats.signing import Verifier
from events.catalogue import RunFinished
from events.codec import encode
from projections.pipeline.frames import Delivered, Deliveries, Encoded, decode
from projections.pipeline.stream_reader import HEADER, _Pipe, _Sender

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


def test_events_decoded_by_the_reader_travel_with_their_messages() -> None:
    event = RunFinished(id="e", at=1.0, actor="c", run_id="r")
    batch = Deliveries.of(MESSAGES[:2])
    assert batch.events == [] and batch.decoded() == [None, None]
    batch.add(8, "dtf.evt.run.r.finished", b"", event=event)
    assert batch.events == [None, None, event] and batch[2].event == event
    assert batch[2:].events == [event] and batch[:2].decoded() == [None, None]
    joined = Deliveries.join([Deliveries.of(MESSAGES[:1]), batch[2:]])
    assert joined.decoded() == [None, event]
    assert list(Deliveries.of(batch)) == list(batch)


# Valid JSON for a run.finished whose term msgpack cannot hold: the projector decodes it.
HUGE = b'{"type":"run.finished","id":"h","at":1,"actor":"c","run_id":"r","term":%d}' % 2**70


async def test_the_readers_frame_is_read_as_deliveries_event_by_event() -> None:
    """The stream reader encodes each event as it decodes it, into one msgpack array sent
    as `Raw`; the projector's side reads the frame as `Deliveries`, nil where the reader
    left a message undecoded (garbage, or a refused signature)."""
    good = RunFinished(id="e", at=1.0, actor="c", run_id="r")
    read, write = os.pipe()
    loop = asyncio.get_running_loop()
    transport, pipe = await loop.connect_write_pipe(_Pipe, os.fdopen(write, "wb", buffering=0))
    sender = _Sender(
        asyncio.StreamWriter(transport, pipe, None, loop), Verifier.of({}, enforced_from=0)
    )
    try:
        await sender.add(1, 10, "dtf.evt.run.r.finished", encode(good), None)
        await sender.add(2, 5, "dtf.evt.run.r.finished", b"not json", None)
        await sender.add(3, 0, "dtf.evt.run.r.finished", HUGE, None)
        with os.fdopen(read, "rb") as out:
            size, messages, last, caught_up = HEADER.unpack(out.read(HEADER.size))
            frame = msgspec.msgpack.decode(out.read(size), type=Deliveries)
    finally:
        transport.close()
    assert (messages, last, caught_up) == (3, 3, True)  # the header says it without decoding
    assert frame.seqs == [1, 2, 3] and frame.caught_up
    assert frame.events == [good, None, None]
    assert frame.datas == [b"", b"not json", HUGE]  # the payload only where still needed


async def test_a_frame_the_flush_timer_wrote_holds_the_reader_back_too() -> None:
    """With the projector behind, the reader waits for the pipe after every frame, also one
    its flush timer wrote; else those frames would pile up in its memory."""
    big = encode(RunFinished(id="e" * 60_000, at=1.0, actor="c", run_id="r"))
    read, write = os.pipe()
    loop = asyncio.get_running_loop()
    transport, pipe = await loop.connect_write_pipe(_Pipe, os.fdopen(write, "wb", buffering=0))
    sender = _Sender(asyncio.StreamWriter(transport, pipe, None, loop), Verifier.of({}, 0))
    held = None
    for seq in range(1, 100):  # the pipe holds 64 KiB: a few frames fill it
        task = asyncio.create_task(sender.add(seq, 5, "dtf.evt.run.r.finished", big, None))
        for _ in range(20):
            await asyncio.sleep(0)
        if not task.done():
            held = task
            break
        sender.write()  # as the timer does, FLUSH_S after a frame's first message
    assert held is not None, "the reader never waited for the pipe"
    taken = loop.run_in_executor(None, _read_all, read)  # the projector catches up
    await asyncio.wait_for(held, 10)
    transport.close()
    assert await asyncio.wait_for(taken, 10) > 60_000 * 2


def _read_all(fd: int) -> int:
    with os.fdopen(fd, "rb") as out:
        return sum(len(chunk) for chunk in iter(lambda: out.read(1 << 16), b""))


def test_frames_wait_encoded_and_a_bad_one_is_one_clear_error() -> None:
    """The projector keeps frames as the reader sent them and decodes them when it applies
    them, as one batch in order; a frame that is not `Deliveries` is a StoreError."""
    first, second = Deliveries([1], ["a"], [b"x"], {}), Deliveries([2, 3], ["b", "c"], [b"", b""])
    frames = [Encoded(msgspec.msgpack.encode(f), len(f)) for f in (first, second)]
    assert decode(frames).seqs == [1, 2, 3]
    with pytest.raises(StoreError, match="bad frame"):
        decode([Encoded(b"\x92garbage", 1)])
