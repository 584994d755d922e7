"""The Projection protocol, what a projection is given, and the registry of projections by name.

A projection is a small synchronous unit: a name, the tables of `projections.schema.TABLES` it
owns, and `apply(batch, con)`, which writes one `Batch` of folded events (a sequence of
`Folded`: each recorded event with the aggregate states it met) into those tables on the open
transaction of `con`, and touches nothing else.  Each lives in one module under
`projections/tables/` that defines `PROJECTION`; `registry()` finds them, so adding a
projection is adding one file.
"""

from __future__ import annotations

import importlib
import itertools
import pkgutil
from collections.abc import Iterator, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, NamedTuple, Protocol, overload

import duckdb

from events.catalogue import AnyEvent

if TYPE_CHECKING:
    from projections.context import RunEntry, TaskEntry, WorkerEntry


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
    so that a projection visits only the events it reads instead of scanning the batch."""

    def __init__(self, folded: list[Folded]) -> None:
        self._folded = folded
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


class Projection(Protocol):
    """A read model: owns `tables` and writes each batch into them with `apply`."""

    name: str
    tables: tuple[str, ...]

    def apply(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
        """Write the batch's rows; runs inside the projector's transaction, never commits."""
        ...


def registry(package: str = "projections.tables") -> dict[str, Projection]:
    """Every module of `package` that defines PROJECTION, by projection name, sorted."""
    found: dict[str, Projection] = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        projection = getattr(module, "PROJECTION", None)
        if projection is not None:
            found[projection.name] = projection
    return dict(sorted(found.items()))
