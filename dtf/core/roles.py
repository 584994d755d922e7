"""Who may do what on the fleet: each role's NATS subject permissions, as plain data.

`dtf auth` renders these into the server's authorization block (`dtf.nats.auth`), one user
per key.  A subject a role is not given is refused by the server itself, so a stolen
submitter key cannot assign tasks, forge a worker's heartbeat or delete the event stream.

What the subject scheme cannot say is left to signed events: a result subject
(`dtf.evt.task.<run>.<n>.completed`) names no worker, so any worker key may publish one;
`dtf.core.authority` refuses it unless the signer is the worker the attempt was assigned to,
and uses these same tables to refuse an event its signer's role could not have published.

JetStream's API is subjects too (`$JS.API.*`): every role that reads the event stream may
create and delete its own ephemeral consumers and read stream information; only `admin` may
create, purge or delete streams and buckets.
"""

from __future__ import annotations

from dataclasses import dataclass

from events import topology

EVENTS = topology.EVENTS_STREAM
LOGS = topology.LOGS_STREAM
ROLES = ("submitter", "worker", "coordinator", "viewer", "admin")


@dataclass(frozen=True)
class Permissions:
    """Subjects a user may publish to and subscribe to (NATS wildcards)."""

    publish: tuple[str, ...]
    subscribe: tuple[str, ...]
    responds: bool = False  # may answer requests (publish to the requester's reply subject)


def _read_stream(stream: str) -> tuple[str, ...]:
    """Follow a stream with ephemeral consumers and read its messages and information."""
    return (
        f"$JS.API.STREAM.INFO.{stream}",
        f"$JS.API.STREAM.MSG.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}",
        f"$JS.API.DIRECT.GET.{stream}.>",
        f"$JS.API.CONSUMER.CREATE.{stream}",
        f"$JS.API.CONSUMER.CREATE.{stream}.>",
        f"$JS.API.CONSUMER.INFO.{stream}.>",
        f"$JS.API.CONSUMER.DELETE.{stream}.>",
    )


def _kv(bucket: str) -> str:
    return f"KV_{bucket}"


def _objects(bucket: str) -> str:
    return f"OBJ_{bucket}"


# Every client: JetStream account information, replies to its own requests, flow control of
# its consumers, and reading the buckets every command looks at (who leads, who is alive).
_BASE_PUBLISH = (
    "$JS.API.INFO",
    "$JS.API.STREAM.NAMES",  # nats-py looks a subject's stream up by name
    "$JS.FC.>",
    # Every connection checks that the streams and buckets exist (`ensure_topology`).
    *(f"$JS.API.STREAM.INFO.{s}" for s in (EVENTS, LOGS, _objects(topology.BUNDLES_BUCKET))),
    *_read_stream(_kv(topology.HEARTBEATS_BUCKET)),
    *_read_stream(_kv(topology.LEADER_BUCKET)),
    *_read_stream(_kv(topology.KEYS_BUCKET)),  # the signers' public keys, to verify events
)
_BASE_SUBSCRIBE = ("_INBOX.>",)
# Reading the record: the event log, task output, code bundles (a viewer may read what ran).
_READ = (
    *_read_stream(EVENTS),
    *_read_stream(LOGS),
    *_read_stream(_objects(topology.BUNDLES_BUCKET)),
    *_read_stream(_objects(topology.COVERAGE_BUCKET)),
)


def _events(*suffixes: str, scope: str) -> tuple[str, ...]:
    return tuple(f"dtf.evt.{scope}.{suffix}" for suffix in suffixes)


def permissions(role: str, name: str) -> Permissions:
    """The permissions of the key `name` of `role`; a worker key is for the worker whose id
    is `name` (its own events, heartbeat and assignments only)."""
    if role == "admin":
        return Permissions((">",), (">",))
    if role == "viewer":
        return Permissions((*_BASE_PUBLISH, *_READ), (*_BASE_SUBSCRIBE, "dtf.progress.>"))
    if role == "submitter":
        return Permissions(
            (
                *_BASE_PUBLISH,
                *_READ,
                *_events("submitted", "cancel_requested", scope="run.*"),
                *_events("queued", scope="task.*.*"),
                "dtf.api.plan",
                f"$O.{topology.BUNDLES_BUCKET}.>",
            ),
            (*_BASE_SUBSCRIBE, "dtf.progress.>"),
        )
    if role == "coordinator":
        return Permissions(
            (
                *_BASE_PUBLISH,
                *_read_stream(EVENTS),
                # Health checks of quarantined workers are tasks the coordinator queues.
                *_events(
                    "queued",
                    "assigned.*",
                    "retry_scheduled",
                    "cancelled",
                    "failed",
                    scope="task.*.*",
                ),
                *_events("finished", scope="run.*"),
                *_events("lost", "quarantined", scope="worker.*"),
                f"$KV.{topology.LEADER_BUCKET}.{topology.LEADER_KEY}",
                # Its snapshots: replacing one purges the chunks of the one before.
                *_read_stream(_objects(topology.SNAPSHOTS_BUCKET)),
                f"$O.{topology.SNAPSHOTS_BUCKET}.>",
                f"$JS.API.STREAM.PURGE.{_objects(topology.SNAPSHOTS_BUCKET)}",
            ),
            (*_BASE_SUBSCRIBE, "dtf.api.plan"),
            responds=True,
        )
    if role == "worker":
        checkpoints = topology.CHECKPOINTS_BUCKET
        return Permissions(
            (
                *_BASE_PUBLISH,
                *_read_stream(EVENTS),
                *_read_stream(_objects(topology.BUNDLES_BUCKET)),
                *_read_stream(_objects(checkpoints)),
                # Its own durable consumer of its assignments, and the acks of its deliveries.
                f"$JS.API.CONSUMER.DURABLE.CREATE.{EVENTS}.{name}",
                f"$JS.API.CONSUMER.INFO.{EVENTS}.{name}",
                f"$JS.API.CONSUMER.DELETE.{EVENTS}.{name}",
                f"$JS.ACK.{EVENTS}.{name}.>",
                *_events("registered", "draining", "stopped", scope=f"worker.{name}"),
                *_events(
                    "started",
                    "completed",
                    "failed",
                    "checkpointed",
                    "superseded",
                    scope="task.*.*",
                ),
                f"$KV.{topology.HEARTBEATS_BUCKET}.{name}",
                f"$O.{checkpoints}.>",
                *_read_stream(_objects(topology.COVERAGE_BUCKET)),
                f"$O.{topology.COVERAGE_BUCKET}.>",
                "dtf.log.>",
                "dtf.progress.>",
            ),
            (*_BASE_SUBSCRIBE, "dtf.evt.task.*.*.cancelled", f"dtf.evt.worker.{name}.>"),
        )
    raise ValueError(f"unknown role {role!r} (one of {', '.join(ROLES)})")
