"""Longest expected task first (LPT), each to the capable worker expected to be free soonest.

Expected durations come from the task (`TaskQueued.expected_duration`, sized by the
submitter from recorded durations of the same test items); unknown ones get `default`.
LPT keeps the tail of a run short: the big tasks start first, small ones fill the gaps.
"""

from __future__ import annotations

from typing import Any

from dtf.core.scheduling.protocol import WorkerSlots
from dtf.core.state import TaskState


class DurationAware:
    name = "duration"

    def __init__(self, default: float = 1.0) -> None:
        self.default = default

    def expected(self, task: TaskState) -> float:
        return task.spec.expected_duration or self.default

    def order(self, task: TaskState) -> tuple[Any, ...]:
        return (-task.spec.priority, -self.expected(task), task.queue_seq, task.task_id)

    def rank(self, worker: WorkerSlots) -> tuple[Any, ...]:
        return (worker.backlog / worker.slots, -worker.free, worker.worker_id)

    def took(self, worker: WorkerSlots, task: TaskState) -> None:
        worker.backlog += self.expected(task)
