"""Placing queued tasks on free slots without looking at the whole queue.

Tasks that fit the same workers share a placement (`protocol.placement`); a round looks at
placements, not tasks.  For each placement some free worker fits, its first task in the
strategy's order joins a frontier; the frontier's best task goes to the best-ranked capable
worker, the next task of its placement takes its place, until the free slots or the
placements run out.  Workers are kept in a heap per placement, by rank.

`QueueIndex` keeps each placement's tasks in a heap as they enter the queue (the View feeds
it: `View.queue_indexes`), so a decision costs about placements x free workers plus
log(queue) per assignment: a completion in a queue of 100,000 tasks is not 100,000 times
the work of one in a queue of one.  Entries of tasks that left the queue since are dropped
when met.
"""

from __future__ import annotations

import heapq
import itertools
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from dtf.core.scheduling.protocol import (
    Assignment,
    Placement,
    Strategy,
    WorkerSlots,
    fitting,
    placement,
)
from dtf.core.state import TaskState, View

Entry = tuple[tuple[Any, ...], int, str]  # (order key, arrival, task id)


class _Pool:
    """The workers of one placement, best rank first.  A worker's rank only rises as it
    takes tasks, so an entry whose rank is out of date is put back with the current one."""

    def __init__(self, strategy: Strategy, workers: Iterable[WorkerSlots]) -> None:
        self.rank = strategy.rank
        self._tiebreak = itertools.count()  # WorkerSlots do not compare
        self.heap = [(self.rank(w), next(self._tiebreak), w) for w in workers]
        heapq.heapify(self.heap)

    def take(self) -> WorkerSlots | None:
        """Pop the best worker with a free slot (None: all full); `give_back` it after."""
        while self.heap:
            rank, i, worker = heapq.heappop(self.heap)
            if worker.free <= 0:
                continue
            current = self.rank(worker)
            if current != rank:
                heapq.heappush(self.heap, (current, i, worker))
                continue
            return worker
        return None

    def give_back(self, worker: WorkerSlots) -> None:
        if worker.free > 0:
            heapq.heappush(self.heap, (self.rank(worker), next(self._tiebreak), worker))


def place(
    strategy: Strategy,
    sources: dict[Placement, Iterator[TaskState]],
    workers: Sequence[WorkerSlots],
) -> list[Assignment]:
    """Assignments for the tasks of `sources` (each placement's in the strategy's order) on
    `workers`, best task first, never more per worker than its free slots."""
    arrival = itertools.count()
    frontier: list[tuple[tuple[Any, ...], int, Placement, TaskState]] = []
    pools: dict[Placement, tuple[_Pool, _Pool]] = {}
    for where, tasks in sources.items():
        preferred, avoided = fitting(where, workers)
        if not preferred and not avoided:
            continue
        first = next(tasks, None)
        if first is None:
            continue
        pools[where] = (_Pool(strategy, preferred), _Pool(strategy, avoided))
        frontier.append((strategy.order(first), next(arrival), where, first))
    heapq.heapify(frontier)
    free = sum(w.free for w in workers)
    decisions: list[Assignment] = []
    while frontier and free > 0:
        _, _, where, task = heapq.heappop(frontier)
        for pool in pools[where]:  # the workers a retry avoids only when no other fits
            worker = pool.take()
            if worker is not None:
                break
        else:
            continue  # every worker this placement fits is full: its other tasks wait too
        worker.free -= 1
        free -= 1
        strategy.took(worker, task)
        pool.give_back(worker)
        decisions.append(Assignment(task.task_id, worker.worker_id))
        following = next(sources[where], None)
        if following is not None:
            heapq.heappush(frontier, (strategy.order(following), next(arrival), where, following))
    return decisions


def schedule(
    strategy: Strategy, queued: Iterable[TaskState], workers: Sequence[WorkerSlots]
) -> list[Assignment]:
    """`place` for a plain collection of queued tasks (in no particular order)."""
    groups: dict[Placement, list[tuple[tuple[Any, ...], str, TaskState]]] = defaultdict(list)
    for task in queued:
        groups[placement(task)].append((strategy.order(task), task.task_id, task))
    return place(strategy, {where: _drain(entries) for where, entries in groups.items()}, workers)


def _drain(entries: list[tuple[tuple[Any, ...], str, TaskState]]) -> Iterator[TaskState]:
    heapq.heapify(entries)  # sorted only as far as the round reads
    while entries:
        yield heapq.heappop(entries)[2]


class QueueIndex:
    """Queued tasks by placement, each placement's in a heap by one strategy's order."""

    def __init__(self, order: Callable[[TaskState], tuple[Any, ...]]) -> None:
        self.order = order
        self.heaps: dict[Placement, list[Entry]] = {}
        self._arrival = itertools.count()

    def add(self, task: TaskState) -> None:
        """`task` entered the queue (first queued, or queued again for a retry)."""
        entry = (self.order(task), next(self._arrival), task.task_id)
        heapq.heappush(self.heaps.setdefault(placement(task), []), entry)

    def place(
        self, strategy: Strategy, view: View, now: float, workers: Sequence[WorkerSlots]
    ) -> list[Assignment]:
        """This round's assignments of the tasks whose backoff is over."""
        taken: list[tuple[Placement, Entry]] = []
        seen: set[str] = set()
        for where in list(self.heaps):
            self._prune(where, view)
        sources = {where: self._tasks(where, view, now, seen, taken) for where in self.heaps}
        try:
            return place(strategy, sources, workers)
        finally:
            # Everything read goes back: an assigned task leaves the queue only once its
            # TaskAssigned is stored and folded, and is dropped when met after that.
            for where, entry in taken:
                heapq.heappush(self.heaps.setdefault(where, []), entry)

    def _current(self, where: Placement, entry: Entry, view: View) -> TaskState | None:
        """The task of `entry` if it still waits in this placement with this order."""
        task = view.tasks.get(entry[2])
        if task is None or task.status != "queued":
            return None
        if placement(task) != where or self.order(task) != entry[0]:
            return None  # queued again since, under another placement: its new entry counts
        return task

    def _prune(self, where: Placement, view: View) -> None:
        """Drop the stale entries on top of a heap, and the heap once empty (placements of
        finished retries and health checks must not pile up)."""
        heap = self.heaps[where]
        while heap and self._current(where, heap[0], view) is None:
            heapq.heappop(heap)
        if not heap:
            del self.heaps[where]

    def _tasks(
        self,
        where: Placement,
        view: View,
        now: float,
        seen: set[str],
        taken: list[tuple[Placement, Entry]],
    ) -> Iterator[TaskState]:
        heap = self.heaps[where]
        while heap:
            entry = heapq.heappop(heap)
            task = self._current(where, entry, view)
            if task is None or entry[2] in seen:
                continue  # left the queue, or a second entry of the same wait
            taken.append((where, entry))
            if task.not_before > now:
                continue  # a retry still backing off
            seen.add(entry[2])
            yield task


def index_of(view: View, strategy: Strategy) -> QueueIndex:
    """The View's queue index for `strategy`'s order, built on first use from its queue."""
    index = view.queue_indexes.get(strategy.name)
    if not isinstance(index, QueueIndex):
        index = QueueIndex(strategy.order)
        for task in view.queued():
            index.add(task)
        view.queue_indexes[strategy.name] = index
    return index
