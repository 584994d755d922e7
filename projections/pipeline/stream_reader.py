"""The projector's stream reader, run as a child process: nats-py's ordered consumer, framed
onto stdout, each message decoded.

    python -m projections.pipeline.stream_reader --from SEQ URL [URL ...]

Reading a JetStream message costs ~5 us of Python even on `dtf.nats.raw`'s fast path (~10
through nats-py's callbacks); in the projector's own process that time and the projector's
(folding, DuckDB) would add up on one core.  Here it runs on another core, and so does
decoding each message's event: the projector gets them in large frames of columns
(`projections.pipeline.frames`).  `projections.pipeline.delivery.ProcessReader` starts and
reads this.

Each frame on stdout is a header (`HEADER`: the body's length, its number of messages, the
last one's stream sequence, and whether it reached the stream's end, big-endian) and the body,
msgpack `Deliveries` (`projections.pipeline.frames`): the parent keeps frames as they came and
decodes them only when it applies them, knowing from the headers alone what it holds.  The
first frame is
sent once the consumer exists (possibly empty), so that the parent learns of a failure to
connect at start.  A frame is sent when FRAME_MESSAGES are waiting, when the stream's end has
been reached, or FLUSH_S after the first message waiting.  Writing waits for the pipe to drain,
and nats-py's read loop waits for the write (`RawClient`), so a slow projector slows the
socket and the server instead of this process buffering without limit.  A failure is one line
on stderr and exit status 2.  The process dies with its parent (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import fcntl
import os
import struct
import sys
from collections.abc import Mapping
from pathlib import Path

import msgspec

from dtf.errors import DtfError
from dtf.nats.raw import RawClient
from dtf.nats.signing import Verifier
from dtf.nats.store import EventStore
from dtf.runner.child.lifeline import exit_with_parent
from events import codec, topology
from projections.pipeline.frames import Deliveries

FRAME_MESSAGES = 4_000
FLUSH_S = 0.02
PIPE_BYTES = 4 << 20
HEADER = struct.Struct(">IIQ?")  # body bytes, messages, last sequence, caught up


class _Sender:
    """Collects deliveries and writes them out as frames, in order."""

    def __init__(self, writer: asyncio.StreamWriter, verifier: Verifier) -> None:
        self._writer = writer
        self._verifier = verifier
        self._frame = _empty()
        # The frame's events, each encoded as soon as it is decoded: the frame holds bytes,
        # not thousands of objects.
        self._events = bytearray(_ARRAY)
        self._encoder = msgspec.msgpack.Encoder()
        self._timer: asyncio.TimerHandle | None = None
        self._unsettled = False  # a frame was written since the last drain

    async def add(
        self,
        seq: int,
        pending: int,
        subject: str,
        data: bytes,
        headers: Mapping[str, str] | None,
    ) -> None:
        signer = None
        if self._verifier.active:
            signer = await self._verifier.verify(seq, subject, data, headers)
        if isinstance(signer, str):  # refused: the projector records it as it came
            self._frame.add(seq, subject, data, refused=signer)
            self._events += _NIL
        else:
            mark = len(self._events)
            try:
                self._encoder.encode_into(codec.read(subject, data), self._events, -1)
                # A signed payload goes too: the fold may yet refuse its signer the event.
                kept = data if signer is not None else b""
            except (codec.Undecodable, OverflowError, TypeError, ValueError):
                # Not an event (the projector decodes it again for the reason), or valid JSON
                # msgpack cannot hold (an integer past 64 bits, half encoded: cut off): sent
                # undecoded, the payload with it.
                del self._events[mark:]
                self._events += _NIL
                kept = data
            if signer is None:
                self._frame.add(seq, subject, kept)
            else:
                self._frame.add(seq, subject, kept, signer.name, signer.role)
        if pending == 0:
            self._frame.caught_up = True
        if pending == 0 or len(self._frame) >= FRAME_MESSAGES:
            self.write()
        if self._unsettled:
            # Also after a frame the timer wrote: otherwise, with the projector behind, every
            # frame written that way would wait in this process's memory.
            self._unsettled = False
            await self._writer.drain()
        elif self._timer is None and self._frame:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_S, self.write)

    def write(self, *, caught_up: bool = False) -> None:
        """Send what is waiting as one frame (synchronous, so frames keep stream order)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        frame, self._frame = self._frame, _empty()
        events, self._events = self._events, bytearray(_ARRAY)
        events[1:5] = len(frame).to_bytes(4, "big")
        out = _Outgoing(
            frame.seqs,
            frame.subjects,
            frame.datas,
            frame.signed,
            frame.caught_up or caught_up,
            msgspec.Raw(memoryview(events)),
        )
        body = self._encoder.encode(out)
        last = frame.seqs[-1] if frame.seqs else 0
        self._writer.write(HEADER.pack(len(body), len(frame), last, out.caught_up) + body)
        self._unsettled = True


class _Outgoing(msgspec.Struct, array_like=True):
    """A frame as sent: `Deliveries` field for field, its events already encoded (a msgpack
    array, nil for a message not decoded here), so the parent decodes it as `Deliveries`."""

    seqs: list[int]
    subjects: list[str]
    datas: list[bytes]
    signed: dict[int, tuple[str, str, str]]
    caught_up: bool
    events: msgspec.Raw


_ARRAY = b"\xdd\x00\x00\x00\x00"  # msgpack array32 header, its length set when sent
_NIL = b"\xc0"


def _empty() -> Deliveries:
    return Deliveries([], [], [], {})


class _Pipe(asyncio.streams.FlowControlMixin):
    """The stdout pipe's protocol: flow control for drain(), and a future done at its close."""

    def __init__(self) -> None:
        super().__init__()
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if not self.closed.done():
            self.closed.set_result(None)


def _widen(fd: int) -> None:
    """Grow the pipe's buffer from 64 KiB: the parent's thread reading it needs the GIL
    between its reads, which the thread applying a batch holds most of the time, and a bigger
    pipe lets each turn take thousands of deliveries instead of a hundred."""
    if not hasattr(fcntl, "F_SETPIPE_SZ"):
        return
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = 1 << 20
    with contextlib.suppress(OSError):
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, min(PIPE_BYTES, limit))


async def _stdout_writer() -> tuple[asyncio.StreamWriter, _Pipe]:
    loop = asyncio.get_running_loop()
    _widen(sys.stdout.fileno())
    pipe = os.fdopen(sys.stdout.fileno(), "wb", buffering=0, closefd=False)
    transport, protocol = await loop.connect_write_pipe(_Pipe, pipe)
    return asyncio.StreamWriter(transport, protocol, None, loop), protocol


async def read(urls: list[str], start_seq: int) -> None:
    """Stream the events from `start_seq` onto stdout until killed or stdout closes."""
    writer, pipe = await _stdout_writer()
    store = await EventStore.connect(urls, name="dtf-projector-reader", client=RawClient)
    await store.load_registry()
    sender = _Sender(writer, store.verifier)
    follower = await store.follow_raw(topology.EVENTS.subjects, sender.add, from_seq=start_seq)
    sender.write(caught_up=follower.caught_up.is_set())
    # Runs until the parent kills us; a closed stdout (the parent went away) ends it too.
    await pipe.closed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m projections.pipeline.stream_reader")
    parser.add_argument("--from", dest="start", type=int, required=True)
    parser.add_argument("--parent", type=int, default=None)
    parser.add_argument("urls", nargs="+")
    args = parser.parse_args(argv)
    exit_with_parent(args.parent)
    try:
        asyncio.run(read(args.urls, args.start))
    except DtfError as exc:
        print(exc, file=sys.stderr, flush=True)
        return exc.exit_code
    except (BrokenPipeError, ConnectionResetError):
        return 0  # the parent stopped reading: it is done with us
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
