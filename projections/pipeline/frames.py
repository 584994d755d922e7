"""Deliveries of the event stream as columns: what the stream reader sends in one frame and
what the projector applies as one batch.

Columns rather than a tuple per message, because the projector's process spends its one
core on every object it makes: taking a frame of 4,000 messages in as three lists costs
~0.2 us a message, as 4,000 `Delivered` tuples ~1.1 us (`bench/replay.py`).  Signatures are
sparse: only a keyed server's messages carry a signer, or a reason their signature was
refused.

The stream reader decodes each message too, in its own process, and sends the event instead
of its JSON: msgpack structs in one frame take half the projector's time that decoding JSON
message by message takes (~1.0 against ~1.9 us an event).  Its payload is then left out
(`b""`), except where the projector may still need it to record a rejection: a message that
does not decode, or that carries a signature.

The projector keeps the frames it has taken in as they came (`Encoded`, a third the size of the
objects they decode to) and decodes them in the thread that applies them, when it does
(`decode`): the next batch waits as bytes while the last one is applied.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, overload

import msgspec

from dtf.errors import StoreError
from events.catalogue import AnyEvent


class Delivered(NamedTuple):
    """One stored message: stream sequence, subject and the raw payload; where the server
    keeps a registry of signing keys, the verified signer's name and role, or why its
    signature was refused (`dtf.nats.signing`, checked in the reader's process)."""

    seq: int
    subject: str
    data: bytes
    signer: str = ""
    role: str = ""
    refused: str = ""
    event: AnyEvent | None = None  # decoded by the reader (`data` is then b"" if unsigned)


class Deliveries(msgspec.Struct, array_like=True):
    """Messages in stream order: `seqs[i]`, `subjects[i]` and `datas[i]` are one message;
    `signed` maps the sequence of each message with a signer or a refusal to
    (signer, role, refused).  `caught_up` (of a frame) says the stream's end, as of its last
    message, has been delivered.  `events[i]`, where the reader decoded the message, is its
    event (None: decode `datas[i]`); `events` may be empty when nothing was decoded."""

    seqs: list[int]
    subjects: list[str]
    datas: list[bytes]
    signed: dict[int, tuple[str, str, str]] = {}
    caught_up: bool = False
    events: list[AnyEvent | None] = []

    @classmethod
    def of(cls, items: Iterable[Delivered]) -> Deliveries:
        batch = cls([], [], [], {})
        for d in items:
            batch.add(d.seq, d.subject, d.data, d.signer, d.role, d.refused, d.event)
        return batch

    @classmethod
    def join(cls, parts: Sequence[Deliveries]) -> Deliveries:
        if not parts:
            return cls([], [], [], {})
        if len(parts) == 1:
            return parts[0]
        batch = cls([], [], [], {}, events=[])
        for part in parts:
            batch.seqs += part.seqs
            batch.subjects += part.subjects
            batch.datas += part.datas
            batch.signed.update(part.signed)
            batch.events += part.decoded()
        return batch

    def add(
        self,
        seq: int,
        subject: str,
        data: bytes,
        signer: str = "",
        role: str = "",
        refused: str = "",
        event: AnyEvent | None = None,
    ) -> None:
        if self.events or event is not None:  # else `events` stays empty: none decoded
            if not self.events:
                self.events = [None] * len(self.seqs)
            self.events.append(event)
        self.seqs.append(seq)
        self.subjects.append(subject)
        self.datas.append(data)
        if signer or refused:
            self.signed[seq] = (signer, role, refused)

    def decoded(self) -> list[AnyEvent | None]:
        """`events` as one per message (None where the reader did not decode it)."""
        return self.events if len(self.events) == len(self.seqs) else [None] * len(self.seqs)

    def after(self, seq: int) -> Deliveries:
        """Those after stream sequence `seq` (a redelivery after a restart repeats some)."""
        if not self.seqs or self.seqs[0] > seq:
            return self
        start = next((i for i, s in enumerate(self.seqs) if s > seq), len(self.seqs))
        return self[start:]

    def __len__(self) -> int:
        return len(self.seqs)

    @overload
    def __getitem__(self, index: int) -> Delivered: ...

    @overload
    def __getitem__(self, index: slice) -> Deliveries: ...

    def __getitem__(self, index: int | slice) -> Delivered | Deliveries:
        if isinstance(index, slice):
            seqs = self.seqs[index]
            signed = {s: self.signed[s] for s in seqs if s in self.signed} if self.signed else {}
            events = self.events[index] if self.events else []
            return Deliveries(seqs, self.subjects[index], self.datas[index], signed, events=events)
        seq = self.seqs[index]
        signer, role, refused = self.signed.get(seq, ("", "", ""))
        event = self.events[index] if self.events else None
        return Delivered(seq, self.subjects[index], self.datas[index], signer, role, refused, event)

    def __iter__(self) -> Iterator[Delivered]:
        for i in range(len(self.seqs)):
            yield self[i]


class Encoded(NamedTuple):
    """A frame as the stream reader sent it: msgpack `Deliveries` and how many messages."""

    body: bytes | bytearray
    messages: int


_decode = msgspec.msgpack.Decoder(Deliveries).decode


def decode(frames: Sequence[Encoded]) -> Deliveries:
    """The deliveries of `frames`, in order, as one batch."""
    try:
        return Deliveries.join([_decode(frame.body) for frame in frames])
    except msgspec.DecodeError as exc:
        raise StoreError(f"the stream reader sent a bad frame: {exc}") from None
