"""What a projection is given: a `Batch` of `Folded` events, each recorded event with the
aggregate entries it met, indexed so that a projection visits only the events it reads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from operator import attrgetter
from typing import overload

import msgspec

from events.catalogue import AnyEvent
from projections.pipeline.entries import RunEntry, TaskEntry, WorkerEntry


class Folded(msgspec.Struct, frozen=True, gc=False):
    """One recorded event and the aggregate states it met, as the fold left them after it.

    `accepted` says whether the event changed its aggregate (an unknown, stale or repeated
    event does not); `task`, `worker` and `run` are the entries of the event's task, the
    worker it names and its run, after the event (None when unknown).  Entries are immutable
    values, so a projection may keep them past the event.  (A struct, not a NamedTuple: one
    is made for every event, and a NamedTuple's constructor is a Python call, five times
    slower; none refers back to it, so the cyclic collector need not track it.)
    """

    seq: int
    subject: str
    event: AnyEvent
    accepted: bool
    task: TaskEntry | None = None
    worker: WorkerEntry | None = None
    run: RunEntry | None = None


_SEQ = attrgetter("seq")


class Batch(Sequence[Folded]):
    """A batch of folded events in stream order, indexed by event class (and the accepted
    events of workers and runs by kind), so that a projection visits only the events it
    reads instead of scanning the batch.

    The fold builds these indexes as it goes, and indexes the tasks it advanced too (a
    projection would loop over their events again for the same answer, ~1 us an event):
    `tasks`, each task's entry after its last accepted event, in the order first met;
    `queued`, the ids of those queued in the batch (new to the tables); `attempts`, each
    (task id, attempt) that an accepted event began, advanced or ended (`TaskEntry`'s
    attempt fields), with its entry after the last."""

    def __init__(
        self,
        folded: list[Folded],
        by_class: dict[type, list[Folded]],
        by_kind: dict[str, list[Folded]],
        tasks: dict[str, TaskEntry],
        queued: set[str],
        attempts: dict[tuple[str, int], TaskEntry],
    ) -> None:
        self._folded = folded
        self._by_class = by_class  # every event, by its class
        self._by_kind = by_kind  # the accepted events of workers and runs
        self.tasks = tasks
        self.queued = queued
        self.attempts = attempts

    def __len__(self) -> int:
        return len(self._folded)

    @overload
    def __getitem__(self, index: int) -> Folded: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Folded]: ...

    def __getitem__(self, index: int | slice) -> Folded | Sequence[Folded]:
        return self._folded[index]

    def __iter__(self) -> Iterator[Folded]:
        return iter(self._folded)

    def classes(self) -> list[type]:
        """The event classes present in the batch."""
        return list(self._by_class)

    def of(self, *classes: type, accepted: bool = True) -> list[Folded]:
        """The events of exactly these classes, in stream order (only accepted ones unless
        `accepted` is False)."""
        groups = [self._by_class[c] for c in classes if c in self._by_class]
        if len(groups) == 1:
            items = groups[0]
        else:
            # Sorting runs that are each sorted already is a linear merge for Timsort.
            items = sorted(itertools.chain.from_iterable(groups), key=_SEQ)
        if not accepted:
            return list(items)
        return [f for f in items if f.accepted]

    def accepted(self, kind: str) -> list[Folded]:
        """The accepted events of one aggregate kind ('worker' or 'run'), in order."""
        return self._by_kind.get(kind, [])
