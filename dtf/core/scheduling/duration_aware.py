"""Longest expected task first (LPT), each to the capable worker expected to be free soonest.

Expected durations come from the task (`TaskQueued.expected_duration`, sized by the
submitter from recorded durations of the same test items); unknown ones get `default`.
LPT keeps the tail of a run short: the big tasks start first, small ones fill the gaps.
"""

from __future__ import annotations

from collections.abc import Sequence

from dtf.core.scheduling.protocol import Assignment, WorkerSlots, capable, in_order
from dtf.core.state import TaskState


class DurationAware:
    name = "duration"

    def __init__(self, default: float = 1.0) -> None:
        self.default = default

    def expected(self, task: TaskState) -> float:
        return task.spec.expected_duration or self.default

    def schedule(
        self, queued: Sequence[TaskState], workers: Sequence[WorkerSlots]
    ) -> list[Assignment]:
        decisions: list[Assignment] = []
        free = sum(w.free for w in workers)
        order = in_order(
            queued,
            lambda t: (-t.spec.priority, -self.expected(t), t.queue_seq, t.task_id),
            free,
        )
        for task in order:
            candidates = capable(task, workers)
            if not candidates:
                continue
            best = min(candidates, key=lambda w: (w.backlog / w.slots, -w.free, w.worker_id))
            best.free -= 1
            best.backlog += self.expected(task)
            decisions.append(Assignment(task.task_id, best.worker_id))
            if not any(w.free for w in workers):
                break
        return decisions
