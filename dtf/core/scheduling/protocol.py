"""The seam between the coordinator and a scheduling strategy."""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dtf.core.requirements import satisfies
from dtf.core.state import TaskState, View
from events.catalogue import Capabilities


@dataclass(frozen=True, slots=True)
class Assignment:
    task_id: str
    worker_id: str


@dataclass(slots=True)
class WorkerSlots:
    """A worker able to take work now: its capabilities, free and total slots."""

    worker_id: str
    capabilities: Capabilities
    free: int
    slots: int
    backlog: float = 0.0  # expected seconds of work already on it


class Strategy(Protocol):
    name: str

    def schedule(
        self, queued: Sequence[TaskState], workers: Sequence[WorkerSlots]
    ) -> list[Assignment]:
        """Pick workers for queued tasks; never more tasks per worker than its free slots.

        `queued` is in no particular order; tasks no worker can take stay queued.
        """
        ...


def free_workers(view: View) -> list[WorkerSlots]:
    """Active workers with at least one free slot, with their current expected backlog."""
    result = []
    for worker_id, worker in view.workers.items():
        free = view.free_slots(worker_id)
        if free <= 0:
            continue
        backlog = sum(view.tasks[t].spec.expected_duration for t in view.active.get(worker_id, ()))
        result.append(
            WorkerSlots(worker_id, worker.registered.capabilities, free, worker.slots, backlog)
        )
    return result


def in_order(
    tasks: Sequence[TaskState], key: Callable[[TaskState], Any], free: int
) -> Iterator[TaskState]:
    """Tasks by `key`, cheaply: only the first few are sorted unless more are needed.

    Each completion triggers a round, and a round rarely fills more than a few slots, so
    sorting every queued task each time would make a big run quadratic.
    """
    head_size = 4 * free + 16
    if len(tasks) <= head_size:
        yield from sorted(tasks, key=key)
        return
    head = heapq.nsmallest(head_size, tasks, key=key)
    yield from head
    seen = {t.task_id for t in head}
    yield from sorted((t for t in tasks if t.task_id not in seen), key=key)


def capable(task: TaskState, workers: Sequence[WorkerSlots]) -> list[WorkerSlots]:
    """Workers with a free slot that fit the task; those it should avoid only as a last resort.

    A retry avoids the workers an earlier attempt failed on, and after a resource
    exhaustion needs strictly more memory than the worker that ran out.
    """
    fit = [
        w
        for w in workers
        if w.free > 0
        and (not task.spec.pinned or w.worker_id == task.spec.pinned)
        and satisfies(w.capabilities, task.spec.requirements)
        and (not task.min_memory_gb or w.capabilities.memory_gb > task.min_memory_gb)
    ]
    preferred = [w for w in fit if w.worker_id not in task.avoid]
    return preferred or fit
