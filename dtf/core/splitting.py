"""Group collected test items into tasks, sized so that the tail of a run stays short."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

from events.catalogue import Requirements

SplitMode = Literal["file", "test"]
# Seconds assumed for a test never seen before.  Small, since most unit tests are.
DEFAULT_TEST_SECONDS = 0.05
# Aim for at least this many tasks per slot: the last task to start is then a small share of
# the whole, so slots finish close together.
TASKS_PER_SLOT = 4
# Below this expected length a chunk is not split further: each task costs a few ms of
# events and a batch boundary (module fixtures are set up again).
MIN_TASK_SECONDS = 0.5


@dataclass(frozen=True, slots=True)
class Item:
    nodeid: str
    path: str
    requirements: Requirements = field(default_factory=Requirements)


@dataclass(frozen=True, slots=True)
class TaskPlan:
    nodeids: tuple[str, ...]
    requirements: Requirements
    expected: float


def split(
    items: Sequence[Item],
    *,
    slots: int,
    mode: SplitMode = "file",
    durations: Mapping[str, float] | None = None,
    default: float = DEFAULT_TEST_SECONDS,
) -> list[TaskPlan]:
    """Tasks in collection order: one per file (or per test), large files cut into chunks.

    Items with different requirements never share a task.  A file whose expected time is
    above total / (slots * TASKS_PER_SLOT) (and above MIN_TASK_SECONDS) is cut into
    contiguous chunks of about that length, so one big file cannot become the tail.
    """
    durations = durations or {}

    def cost(item: Item) -> float:
        return durations.get(item.nodeid, default)

    groups: dict[tuple[str, Requirements], list[Item]] = {}
    for item in items:
        key = (item.nodeid if mode == "test" else item.path, item.requirements)
        groups.setdefault(key, []).append(item)
    total = sum(cost(i) for i in items)
    target = max(MIN_TASK_SECONDS, total / max(1, slots * TASKS_PER_SLOT))
    plans: list[TaskPlan] = []
    for (_, req), members in groups.items():
        chunk: list[Item] = []
        spent = 0.0
        for item in members:
            if chunk and spent + cost(item) > target:
                plans.append(TaskPlan(tuple(i.nodeid for i in chunk), req, spent))
                chunk, spent = [], 0.0
            chunk.append(item)
            spent += cost(item)
        plans.append(TaskPlan(tuple(i.nodeid for i in chunk), req, spent))
    return plans
