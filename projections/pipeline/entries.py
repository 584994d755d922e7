"""What the fold keeps of each aggregate: its core state plus what its rows need besides it.

Entries are immutable values (msgspec structs), so a projection may keep one past the event
that made it, and a live task's entry is stored as JSON in `projector_tasks` exactly.
"""

from __future__ import annotations

import msgspec

from dtf.core.state import RunState, TaskState, WorkerState
from events.catalogue import WorkerRegistered
from projections.analytics.hardware import hardware_class


class TaskEntry(msgspec.Struct, frozen=True, gc=False):
    """A task's state plus what its current attempt's row needs besides it."""

    state: TaskState
    case_count: int
    term: int = 0  # lease term of the assignment that began the current attempt
    attempt_started: float | None = None  # TaskStarted of the current attempt
    outcome: str | None = None  # how the current attempt ended, once it has

    @property
    def task_id(self) -> str:
        return self.state.spec.task_id

    @property
    def run_id(self) -> str:
        return self.state.spec.run_id


class WorkerEntry(msgspec.Struct, frozen=True, gc=False):
    """A worker's state plus its capabilities flattened into the `workers` columns."""

    state: WorkerState
    hostname: str
    platform: str
    cpus: int
    memory_gb: float
    gpus: int
    gpu_names: str
    labels: str
    hardware: str
    registered_at: float
    changed_at: float

    @classmethod
    def registered(cls, state: WorkerState, event: WorkerRegistered) -> WorkerEntry:
        caps = event.capabilities
        return cls(
            state,
            hostname=caps.hostname,
            platform=caps.platform,
            cpus=caps.cpus,
            memory_gb=caps.memory_gb,
            gpus=len(caps.gpus),
            gpu_names=",".join(g.name or g.vendor for g in caps.gpus),
            labels=",".join(caps.labels),
            hardware=hardware_class(caps),
            registered_at=event.at,
            changed_at=event.at,
        )


class RunEntry(msgspec.Struct, frozen=True, gc=False):
    """A run's state (its submission without the task list) and its git labels."""

    state: RunState
    task_count: int

    @property
    def labels(self) -> dict[str, str]:
        return self.state.submitted.labels

    @property
    def commit(self) -> str | None:
        return self.state.submitted.labels.get("commit")

    @property
    def branch(self) -> str | None:
        return self.state.submitted.labels.get("branch")
