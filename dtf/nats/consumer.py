"""A worker's durable consumer of its own assignments.

Made anew at every start, from where a predecessor of the same name stopped: a worker
restarted under its id (after a kill -9, say) finds its predecessor's consumer holding an
assignment delivered to a process that is gone, which JetStream would redeliver only after
`ack_wait` (an hour), and a drain would wait on it until then.  From the predecessor's ack
floor, whatever it never acknowledged comes again at once, and the worker's guarded
TaskStarted decides whether it still applies.  With no predecessor, the consumer starts at
the end of the stream, not at its beginning (a fixed id coming back after a clean stop would
otherwise be handed every assignment it ever had).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import api

from dtf.errors import StoreError
from dtf.nats.store import EventStore, position
from events import topology

log = logging.getLogger(__name__)
ACK_WAIT_S = 3600  # a slow test is not a lost delivery: attempts are guarded by the events
INACTIVE_S = 24 * 3600  # the consumer of a worker id that never returns is cleaned up


@dataclass(frozen=True)
class Delivery:
    """One delivered message: its stream sequence, subject and payload; `ack()` when done."""

    seq: int
    subject: str
    data: bytes
    _msg: Msg

    async def ack(self) -> None:
        """Acknowledge it; a connection that is gone makes this a no-op (it comes again)."""
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            await self._msg.ack()


class Consumer:
    """Owns one durable push consumer and its subscription."""

    def __init__(self, store: EventStore, durable: str, sub) -> None:
        self._js = store.js
        self.durable = durable
        self._sub = sub

    @classmethod
    async def resume(
        cls,
        store: EventStore,
        durable: str,
        subject: str,
        handler: Callable[[Delivery], Awaitable[None]],
    ) -> Consumer:
        """The consumer `durable` of `subject`, from where its predecessor stopped (or the
        stream's end); `handler` gets each delivery and must `ack()` it."""
        js = store.js

        async def on_msg(msg: Msg) -> None:
            await handler(Delivery(position(msg)[0], msg.subject, msg.data, msg))

        try:
            start = await store.last_seq() + 1
            try:
                info = await js.consumer_info(topology.EVENTS_STREAM, durable)
            except nats.js.errors.NotFoundError:
                pass
            else:
                start = max(info.ack_floor.stream_seq + 1, info.config.opt_start_seq or 1)
                await js.delete_consumer(topology.EVENTS_STREAM, durable)
                log.info("resuming the deliveries of a previous %s from seq %d", durable, start)
            sub = await js.subscribe(
                subject,
                durable=durable,
                stream=topology.EVENTS_STREAM,
                cb=on_msg,
                manual_ack=True,
                config=api.ConsumerConfig(
                    deliver_policy=api.DeliverPolicy.BY_START_SEQUENCE,
                    opt_start_seq=start,
                    ack_policy=api.AckPolicy.EXPLICIT,
                    ack_wait=ACK_WAIT_S,
                    max_ack_pending=-1,
                    inactive_threshold=INACTIVE_S,
                ),
            )
        except (nats.errors.Error, TimeoutError) as exc:
            raise StoreError(f"cannot consume {subject} as {durable}: {exc}") from None
        return cls(store, durable, sub)

    async def outstanding(self) -> int | None:
        """Messages not yet delivered or not yet acknowledged; None when it cannot be read."""
        try:
            info = await self._sub.consumer_info()
        except (nats.errors.Error, TimeoutError):
            return None
        return info.num_pending + info.num_ack_pending

    async def delete(self) -> None:
        """Unsubscribe and remove the consumer from the server (after a clean stop)."""
        try:
            await self._sub.unsubscribe()
            await self._js.delete_consumer(topology.EVENTS_STREAM, self.durable)
        except (nats.errors.Error, TimeoutError) as exc:
            raise StoreError(f"cannot remove consumer {self.durable}: {exc}") from None
