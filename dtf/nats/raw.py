"""Raw deliveries for the reader that must keep up with the whole stream.

nats-py hands each message of a subscription over as a `Msg`: it parses the headers with
the standard library's email parser, builds the object, puts it on an asyncio queue and has
a task take it off and await the callback, ~10 us of Python a message on a JetStream read,
which is half of what the projector's stream reader costs (`bench/replay.py`).  `RawClient`
is nats-py's client with one change: the data messages of its ordered JetStream
subscriptions go straight to `raw_sink` as (stream seq, pending, subject, payload, headers)
inside nats-py's read loop, at ~4.5 us a message in all, with the ordered consumer's
bookkeeping done as nats-py does it (a gap in the consumer sequence resets the consumer after
the last message handed over).  Everything else takes nats-py's own path: control messages
(heartbeats, flow control), other subscriptions, and messages while some are still queued
for the callback.

It depends on nats-py's internals (`Client._process_msg`, a subscription's `_jsi`), checked
for the installed version by tests/integration/test_raw_client.py.  Awaiting the sink holds
the read loop, so a slow sink slows the socket and the server with it (nats-py's own
callbacks buffer without limit instead: its flow control replies count messages received,
not handled).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping

from nats.aio.client import Client

# (stream sequence, messages pending after it, subject, payload, headers or None)
RawSink = Callable[[int, int, str, bytes, Mapping[str, str] | None], Awaitable[None]]

_STATUS = b"NATS/1.0 "  # a status line (100 Idle Heartbeat, 100 FlowControl Request, 4xx)


def sequences(reply: str) -> tuple[int, int, int] | None:
    """(stream seq, consumer seq, pending) from a JetStream delivery's reply subject:
    `$JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>`, or the longer form
    with domain and account hash in front; None for anything else."""
    tokens = reply.split(".")
    if tokens[0] != "$JS" or len(tokens) < 9:
        return None
    first = 5 if len(tokens) == 9 else 7
    try:
        return int(tokens[first]), int(tokens[first + 1]), int(tokens[first + 3])
    except (ValueError, IndexError):
        return None


class RawClient(Client):
    """nats-py's client; its ordered JetStream subscriptions deliver to `raw_sink` (see the
    module's doc).  `raw_headers` parses the headers for the sink (a signature check needs
    them); otherwise it gets None."""

    def __init__(self) -> None:
        super().__init__()
        self.raw_sink: RawSink | None = None
        self.raw_headers = False

    async def _process_msg(
        self, sid: int, subject: bytes, reply: bytes, data: bytes, headers: bytes
    ) -> None:
        sink = self.raw_sink
        sub = self._subs.get(sid)
        jsi = getattr(sub, "_jsi", None)
        reply_text = reply.decode() if reply and sink is not None else ""
        position = sequences(reply_text) if reply_text else None
        if (
            sink is None
            or jsi is None
            or not jsi._ordered
            or position is None
            or (headers and headers.startswith(_STATUS))
            # Messages that took nats-py's path are still queued for its callback (which
            # hands them to the sink too): this one must come after them.
            or sub._pending_queue.qsize()  # type: ignore[union-attr]
        ):
            await super()._process_msg(sid, subject, reply, data, headers)
            return
        assert sub is not None
        self.stats["in_msgs"] += 1
        self.stats["in_bytes"] += len(data)
        sub._received += 1
        jsi._active = True  # nats-py's heartbeat check resets a consumer it thinks idle
        stream_seq, consumer_seq, pending = position
        if consumer_seq != jsi._dseq:  # a gap: start again after the last one delivered
            await jsi.reset_ordered_consumer(jsi._sseq + 1)
            return
        jsi._dseq = consumer_seq + 1
        jsi._sseq = stream_seq
        jsi.track_sequences(reply_text)  # what heartbeats are compared with
        parsed = await self._process_headers(headers) if self.raw_headers and headers else None
        await sink(stream_seq, pending, subject.decode(), data, parsed)
