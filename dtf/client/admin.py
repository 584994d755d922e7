"""An operator's requests about one worker (drain, enable, disable), recorded as events: what
`dtf worker ACTION ID` and the dashboard's worker actions both do."""

from __future__ import annotations

import getpass
from collections.abc import Callable
from typing import Literal

from dtf.core.envelope import new_event
from dtf.errors import ConfigError
from dtf.nats.store import EventStore, Recorded
from events.catalogue import AnyEvent, WorkerDisabled, WorkerDrainRequested, WorkerEnabled
from events.subjects import valid_token, worker_subject

Action = Literal["drain", "enable", "disable"]
ACTIONS: dict[str, Callable[..., AnyEvent]] = {
    "drain": WorkerDrainRequested,
    "enable": WorkerEnabled,
    "disable": WorkerDisabled,
}


def operator() -> str:
    """The actor an operator's events are recorded under."""
    return f"operator-{getpass.getuser()}"


def check(action: str, worker_id: str) -> None:
    """ConfigError unless `action` is one and `worker_id` could be a worker's id."""
    if action not in ACTIONS:
        raise ConfigError(f"unknown worker action {action!r} (one of {', '.join(ACTIONS)})")
    if not worker_id or not valid_token(worker_id):
        raise ConfigError(f"dtf worker {action} needs a worker id (see dtf status)")


async def request(store: EventStore, action: str, worker_id: str) -> None:
    """Record `action` for `worker_id`; ConfigError for a worker that never registered."""
    check(action, worker_id)
    history = await store.load(worker_subject(worker_id), timeout=10)
    if not any(isinstance(r, Recorded) for r in history):
        raise ConfigError(f"no worker {worker_id} has ever registered")
    await store.append(new_event(ACTIONS[action], operator(), worker_id=worker_id))
