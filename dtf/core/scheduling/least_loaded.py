"""Highest priority first, then oldest; each task to the capable worker with most free room."""

from __future__ import annotations

from collections.abc import Sequence

from dtf.core.scheduling.protocol import Assignment, WorkerSlots, capable, in_order
from dtf.core.state import TaskState


class LeastLoaded:
    name = "least-loaded"

    def schedule(
        self, queued: Sequence[TaskState], workers: Sequence[WorkerSlots]
    ) -> list[Assignment]:
        decisions: list[Assignment] = []
        free = sum(w.free for w in workers)
        key = lambda t: (-t.spec.priority, t.queue_seq, t.task_id)  # noqa: E731
        for task in in_order(queued, key, free):
            candidates = capable(task, workers)
            if not candidates:
                continue
            # Ratio, not count: a 1-slot laptop with one free slot is fuller than a
            # 16-slot server with one task on it.
            best = min(candidates, key=lambda w: ((w.slots - w.free) / w.slots, w.worker_id))
            best.free -= 1
            decisions.append(Assignment(task.task_id, best.worker_id))
            if not any(w.free for w in workers):
                break
        return decisions
