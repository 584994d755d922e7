"""Streams, KV buckets and the object store, declared as plain data.

`dtf.nats.store.connect` creates whatever is missing; `replicas` is raised to 3 by issue #3 when
the cluster has three nodes.
"""

from __future__ import annotations

from dataclasses import dataclass

EVENTS_STREAM = "DTF_EVENTS"
LOGS_STREAM = "DTF_LOGS"
HEARTBEATS_BUCKET = "dtf_heartbeats"
BUNDLES_BUCKET = "dtf_bundles"
# The coordinators' lease (`dtf.nats.lease`): one key, its TTL the lease length, no limit markers.
LEADER_BUCKET = "dtf_leader"
LEADER_KEY = "coordinator"
# Task checkpoints (`dtf.worker.checkpoint`), an object store; kept as long as bundles.
CHECKPOINTS_BUCKET = "dtf_checkpoints"
# Snapshots of the coordinators' folded state (`dtf.core.snapshot`), an object store holding
# one object, replaced by the leader as the stream grows; only coordinators write it.
SNAPSHOTS_BUCKET = "dtf_snapshots"
# Coverage data of `--cov` runs (`dtf.worker.coverage`): one object per pytest session, written
# by its worker after each task, read by the client that combines them; kept as long as bundles.
COVERAGE_BUCKET = "dtf_coverage"
SNAPSHOT_KEY = "coordinator-view"
# The public keys events are signed with (`dtf.nats.signing`): written by `dtf server --auth`
# only, read by every verifier; kept forever, revoked keys included (history must still verify).
KEYS_BUCKET = "dtf_keys"
# Its key holding the stream sequence from which every event must be signed.
KEYS_ENFORCED = "enforced_from"


@dataclass(frozen=True)
class StreamSpec:
    name: str
    subjects: tuple[str, ...]
    max_age_s: float = 0.0  # 0: keep forever
    max_bytes: int = -1
    duplicate_window_s: float = 120.0
    max_msg_size: int = -1
    max_consumers: int = -1  # -1: the server's default (1,000 a stream since nats-server 2.15)


@dataclass(frozen=True)
class BucketSpec:
    name: str
    ttl_s: float = 0.0
    history: int = 1
    in_memory: bool = False  # nothing in it outlives its TTL: no disk, no fsync


# The event log is the source of truth: no age limit.  A 2-minute duplicate window makes a
# publish retried with the same Nats-Msg-Id land once.
# Every worker holds a durable consumer of its assignments, and every follower (coordinators,
# clients, dashboards) an ordered one: nats-server's default of 1,000 consumers a stream
# would stop a fleet at about 990 workers ("maximum consumers limit reached").
MAX_EVENT_CONSUMERS = 100_000
EVENTS = StreamSpec(EVENTS_STREAM, ("dtf.evt.>",), max_consumers=MAX_EVENT_CONSUMERS)
# Task output is bulky and disposable: bounded by age and size.
LOGS = StreamSpec(
    LOGS_STREAM, ("dtf.log.>",), max_age_s=7 * 86400, max_bytes=1 << 30, duplicate_window_s=10
)
STREAMS = (EVENTS, LOGS)

HEARTBEAT_INTERVAL_S = 0.5
HEARTBEAT_TTL_S = 2.0
# In memory: 1,000 workers beat 2,000 times a second, and `sync_interval: always` would
# fsync each (bench/scale.py: the server could then do little else).  A restarted server
# loses nothing of value: every live worker beats again within HEARTBEAT_INTERVAL_S.
HEARTBEATS = BucketSpec(HEARTBEATS_BUCKET, ttl_s=HEARTBEAT_TTL_S, in_memory=True)
BUNDLES_TTL_S = 7 * 86400
