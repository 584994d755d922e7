"""Scheduling strategies, picked by name: each orders the queue and ranks the workers;
`placing` turns that into assignments, which the caller publishes."""

from __future__ import annotations

from dtf.core.scheduling.duration_aware import DurationAware
from dtf.core.scheduling.least_loaded import LeastLoaded
from dtf.core.scheduling.placing import QueueIndex, index_of, schedule
from dtf.core.scheduling.protocol import Assignment, Strategy, WorkerSlots, free_workers

STRATEGIES: dict[str, type[Strategy]] = {
    LeastLoaded.name: LeastLoaded,
    DurationAware.name: DurationAware,
}
DEFAULT_STRATEGY = DurationAware.name


def strategy(name: str) -> Strategy:
    try:
        return STRATEGIES[name]()
    except KeyError:
        known = ", ".join(sorted(STRATEGIES))
        raise ValueError(f"unknown scheduling strategy {name!r} (known: {known})") from None


__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Assignment",
    "QueueIndex",
    "Strategy",
    "WorkerSlots",
    "free_workers",
    "index_of",
    "schedule",
    "strategy",
]
