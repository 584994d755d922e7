"""What a projection is given: a `Batch` of `Folded` events, each recorded event with the
aggregate entries it met, indexed so that a projection visits only the events it reads."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import NamedTuple, overload

from events.catalogue import AnyEvent
from projections.pipeline.entries import RunEntry, TaskEntry, WorkerEntry


class Folded(NamedTuple):
    """One recorded event and the aggregate states it met, as the fold left them after it.

    `accepted` says whether the event changed its aggregate (an unknown, stale or repeated
    event does not); `task`, `worker` and `run` are the entries of the event's task, the
    worker it names and its run, after the event (None when unknown).  Entries are immutable
    values, so a projection may keep them past the event.
    """

    seq: int
    subject: str
    event: AnyEvent
    accepted: bool
    task: TaskEntry | None = None
    worker: WorkerEntry | None = None
    run: RunEntry | None = None


_SEQ = itemgetter(0)


class Batch(Sequence[Folded]):
    """A batch of folded events in stream order, indexed by event class and aggregate kind,
    so that a projection visits only the events it reads instead of scanning the batch.

    The fold indexes the tasks it advanced as it goes (a projection would loop over their
    events again for the same answer, ~1 us an event): `tasks`, each task's entry after its
    last accepted event, in the order first met; `queued`, the ids of those queued in the
    batch (new to the tables); `attempts`, each (task id, attempt) that an accepted event
    began, advanced or ended (`TaskEntry`'s attempt fields), with its entry after the last."""

    def __init__(
        self,
        folded: list[Folded],
        tasks: dict[str, TaskEntry] | None = None,
        queued: set[str] | None = None,
        attempts: dict[tuple[str, int], TaskEntry] | None = None,
    ) -> None:
        self._folded = folded
        self.tasks = tasks if tasks is not None else {}
        self.queued = queued if queued is not None else set()
        self.attempts = attempts if attempts is not None else {}
        self._by_class: dict[type, list[Folded]] = {}
        self._by_kind: dict[str, list[Folded]] = {}
        kinds: dict[type, list[Folded]] = {}
        for f in folded:
            cls = type(f.event)
            group = self._by_class.get(cls)
            if group is None:
                group = self._by_class[cls] = []
                kinds[cls] = self._by_kind.setdefault(f.event.aggregate, [])
            group.append(f)
            if f.accepted:
                kinds[cls].append(f)

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
        """The accepted events of one aggregate kind ('task', 'worker', 'run'), in order."""
        return self._by_kind.get(kind, [])
