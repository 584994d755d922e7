"""Whether the signer of a stored event may have written it: a rule of the core, pure.

The server's permissions (`dtf.core.roles`) already refuse a publish outside a role's
subjects; this is the same table applied again by every reader, so that an event that reached
the stream some other way (an admin's connection, a server without authorization, a forged
header) is still refused, and to what the subject scheme cannot say: a result subject names no
worker, so a worker's report is accepted only from the worker whose id it carries, and only if
the attempt it reports on (when it is still running) was assigned to that worker.
"""

from __future__ import annotations

from functools import lru_cache

from dtf.core.roles import permissions
from events.catalogue import (
    AnyEvent,
    TaskCheckpointed,
    TaskCompleted,
    TaskFailed,
    TaskResultSuperseded,
    TaskStarted,
)
from events.records import Signer
from events.subjects import ROOT

# What a worker reports about an attempt it runs.
_REPORTS = (TaskStarted, TaskCompleted, TaskFailed, TaskCheckpointed, TaskResultSuperseded)


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, a final `>` one or more."""
    want = pattern.split(".")
    have = subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


@lru_cache(maxsize=4096)
def _event_subjects(role: str, name: str) -> tuple[str, ...]:
    """The event subjects a key may publish to (those of its role's permissions)."""
    publish = permissions(role, name).publish
    return tuple(p for p in publish if p == ">" or p.startswith(f"{ROOT}."))


def refusal(signer: Signer, subject: str, event: AnyEvent, owner: str | None) -> str | None:
    """Why `signer` may not have written `event` on `subject` (None: it may).

    `owner` is the worker the event's attempt is assigned to, where the reader's fold knows
    one (a live attempt); None otherwise.
    """
    try:
        allowed = _event_subjects(signer.role, signer.name)
    except ValueError:
        return f"signed by {signer.name!r}, whose role {signer.role!r} is unknown"
    if not any(subject_matches(p, subject) for p in allowed):
        return f"{signer.role} {signer.name!r} may not write {subject}"
    if signer.role != "worker":
        return None
    claimed = getattr(event, "worker_id", signer.name)
    if claimed != signer.name:
        return f"worker {signer.name!r} wrote an event as worker {claimed!r}"
    if isinstance(event, _REPORTS) and owner is not None and owner != signer.name:
        return (
            f"worker {signer.name!r} reported on attempt {event.attempt} of task "
            f"{event.task_id}, which is assigned to {owner!r}"
        )
    return None
