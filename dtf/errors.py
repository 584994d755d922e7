"""One root error with a few families; the CLI turns any of them into one line and an exit code.

NATS, DuckDB and OS exceptions are translated into these at the adapter that meets them, so
code above the adapters never catches library exceptions.
"""

from __future__ import annotations


class DtfError(Exception):
    """Something a user can cause or fix; `exit_code` is what the CLI exits with."""

    exit_code = 2


class ConfigError(DtfError):
    """Bad configuration, arguments or paths."""


class DomainError(DtfError):
    """A command that would break an invariant of the core."""


class StoreError(DtfError):
    """The event store (NATS JetStream) failed or is unreachable."""


class ServerUnreachable(StoreError):
    pass


class PermissionDenied(StoreError):
    """The server refused this key (or no key) what was asked: sign-in, publish, subscribe."""


class ConcurrencyConflict(StoreError):
    """An expected-last-subject-sequence check failed: someone else wrote to the aggregate."""

    def __init__(self, subject: str, expected: int) -> None:
        super().__init__(f"stale write to {subject} (expected last sequence {expected})")
        self.subject = subject
        self.expected = expected


class WorkerError(DtfError):
    """A worker could not prepare or run a task."""


class BundleError(WorkerError):
    """A code bundle is missing, corrupt or refused: the task's environment, not the machine."""


class CollectionError(DtfError):
    """pytest could not collect the suite (bad arguments, broken conftest, ...)."""


class ProjectionError(DtfError):
    """A read model could not be built or queried."""
