"""Deliveries of the event stream as columns: what the stream reader sends in one frame and
what the projector applies as one batch.

Columns rather than a tuple per message, because the projector's process spends its one
core on every object it makes: taking a frame of 4,000 messages in as three lists costs
~0.2 us a message, as 4,000 `Delivered` tuples ~1.1 us (`bench/replay.py`).  Signatures are
sparse: only a keyed server's messages carry a signer, or a reason their signature was
refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple, overload

import msgspec


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


class Deliveries(msgspec.Struct, array_like=True):
    """Messages in stream order: `seqs[i]`, `subjects[i]` and `datas[i]` are one message;
    `signed` maps the sequence of each message with a signer or a refusal to
    (signer, role, refused).  `caught_up` (of a frame) says the stream's end, as of its last
    message, has been delivered."""

    seqs: list[int]
    subjects: list[str]
    datas: list[bytes]
    signed: dict[int, tuple[str, str, str]] = {}
    caught_up: bool = False

    @classmethod
    def of(cls, items: Iterable[Delivered]) -> Deliveries:
        batch = cls([], [], [], {})
        for d in items:
            batch.add(d.seq, d.subject, d.data, d.signer, d.role, d.refused)
        return batch

    @classmethod
    def join(cls, parts: Sequence[Deliveries]) -> Deliveries:
        if len(parts) == 1:
            return parts[0]
        batch = cls([], [], [], {})
        for part in parts:
            batch.seqs += part.seqs
            batch.subjects += part.subjects
            batch.datas += part.datas
            batch.signed.update(part.signed)
        return batch

    def add(
        self,
        seq: int,
        subject: str,
        data: bytes,
        signer: str = "",
        role: str = "",
        refused: str = "",
    ) -> None:
        self.seqs.append(seq)
        self.subjects.append(subject)
        self.datas.append(data)
        if signer or refused:
            self.signed[seq] = (signer, role, refused)

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
            return Deliveries(seqs, self.subjects[index], self.datas[index], signed)
        seq = self.seqs[index]
        return Delivered(seq, self.subjects[index], self.datas[index], *self.signed.get(seq, ()))

    def __iter__(self) -> Iterator[Delivered]:
        for i in range(len(self.seqs)):
            yield self[i]
