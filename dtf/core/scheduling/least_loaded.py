"""Highest priority first, then oldest; each task to the capable worker with most free room."""

from __future__ import annotations

from typing import Any

from dtf.core.scheduling.protocol import WorkerSlots
from dtf.core.state import TaskState


class LeastLoaded:
    name = "least-loaded"

    def order(self, task: TaskState) -> tuple[Any, ...]:
        return (-task.spec.priority, task.queue_seq, task.task_id)

    def rank(self, worker: WorkerSlots) -> tuple[Any, ...]:
        # Ratio, not count: a 1-slot laptop with one free slot is fuller than a
        # 16-slot server with one task on it.
        return ((worker.slots - worker.free) / worker.slots, worker.worker_id)

    def took(self, worker: WorkerSlots, task: TaskState) -> None:
        pass  # the rank is read from the free slots
