"""The seam between the coordinator and a scheduling strategy.

A strategy says two things: in which order queued tasks go (`order`, fixed while a task
waits) and which of the capable free workers takes the next one (`rank`, lowest first;
`took` records that it did).  Everything else, finding who can run what without looking
at every queued task, is `dtf.core.scheduling.placing`'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from dtf.core.requirements import satisfies
from dtf.core.state import TaskState, View
from events.catalogue import Capabilities, Requirements


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

    def order(self, task: TaskState) -> tuple[Any, ...]:
        """The task's place in the queue, lowest first; must not change while it waits."""
        ...

    def rank(self, worker: WorkerSlots) -> tuple[Any, ...]:
        """Of the capable workers with a free slot, the lowest takes the next task.  Taking
        a task must never lower a worker's rank."""
        ...

    def took(self, worker: WorkerSlots, task: TaskState) -> None:
        """`worker` was given `task` (its `free` is already one less)."""
        ...


# Tasks that fit exactly the same workers: their requirements, the worker they are pinned
# to, the workers a retry avoids, the memory a retry after an exhaustion needs.
Placement = tuple[Requirements, str, tuple[str, ...], float]


def placement(task: TaskState) -> Placement:
    return (task.spec.requirements, task.spec.pinned, task.avoid, task.min_memory_gb)


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


def fitting(where: Placement, workers: Sequence[WorkerSlots]) -> tuple[list, list]:
    """The workers with a free slot that fit `where`: (preferred, avoided).  A retry avoids
    the workers an earlier attempt failed on, and after a resource exhaustion needs
    strictly more memory than the worker that ran out."""
    requirements, pinned, avoid, min_memory_gb = where
    fit = [
        w
        for w in workers
        if w.free > 0
        and (not pinned or w.worker_id == pinned)
        and satisfies(w.capabilities, requirements)
        and (not min_memory_gb or w.capabilities.memory_gb > min_memory_gb)
    ]
    if not avoid:
        return fit, []
    return [w for w in fit if w.worker_id not in avoid], [w for w in fit if w.worker_id in avoid]


def capable(task: TaskState, workers: Sequence[WorkerSlots]) -> list[WorkerSlots]:
    """Workers with a free slot that fit the task; those it should avoid only as a last resort."""
    preferred, avoided = fitting(placement(task), workers)
    return preferred or avoided
