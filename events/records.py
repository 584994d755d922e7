"""What a reader of the event stream is handed for each stored message: the event, or why not.

Both carry the stream sequence and subject, so a fold can advance the sequence of the
subject's aggregate over every message the server counts for it, readable or not (the
expected-last-subject-sequence guard counts them all).
"""

from __future__ import annotations

from dataclasses import dataclass

from events.catalogue import AnyEvent


@dataclass(frozen=True, slots=True)
class Recorded:
    """An event as stored: its stream sequence and subject."""

    seq: int
    subject: str
    event: AnyEvent

    @property
    def at(self) -> float:
        return self.event.at


@dataclass(frozen=True, slots=True)
class Rejected:
    """A stored message that is not a readable dtf event; `at` is when the server stored it."""

    seq: int
    subject: str
    reason: str
    at: float = 0.0


Stored = Recorded | Rejected
