"""What a reader of the event stream is handed for each stored message: the event, or why not.

Both carry the stream sequence and subject, so a fold can advance the sequence of the
subject's aggregate over every message the server counts for it, readable or not (the
expected-last-subject-sequence guard counts them all).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.catalogue import AnyEvent


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed a stored event: the key's name (a worker key's name is its worker id) and
    role, as the server's key registry lists them."""

    name: str
    role: str


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored: its stream sequence and subject, and its verified signer (None
    where signatures are not in force: no keys on the server, or history from before)."""

    seq: int
    subject: str
    event: AnyEvent
    signer: Signer | None = None

    @property
    def at(self) -> float:
        return self.event.at


@dataclass(frozen=True, slots=True)
class Rejected:
    """A stored message that is not a readable dtf event, or one that is but that its signer
    may not have written; `at` is when the server stored it."""

    seq: int
    subject: str
    reason: str
    at: float = 0.0
    # Refused for its signature or its signer (a forgery, or a key that may not write it),
    # rather than for being unreadable.
    refused: bool = False


Stored = Recorded | Rejected
