"""Workers: one row per worker with its capabilities and current status, plus the history of
its status changes."""

from __future__ import annotations

import duckdb

from dtf.core.state import WorkerState
from events.catalogue import Capabilities, WorkerRegistered
from projections.pipeline.aggregates import Aggregates
from projections.pipeline.entries import WorkerEntry
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes

# hardware: the class `projections.analytics.hardware.hardware_class` names.
WORKERS = Table(
    "workers",
    (
        ("worker_id", "VARCHAR"),
        ("hostname", "VARCHAR"),
        ("platform", "VARCHAR"),
        ("cpus", "INTEGER"),
        ("memory_gb", "DOUBLE"),
        ("gpus", "INTEGER"),
        ("gpu_names", "VARCHAR"),
        ("labels", "VARCHAR"),
        ("hardware", "VARCHAR"),
        ("slots", "INTEGER"),
        ("status", "VARCHAR"),
        ("registered_at", "DOUBLE"),
        ("changed_at", "DOUBLE"),
        ("reason", "VARCHAR"),
    ),
    key=("worker_id",),
)
WORKER_STATUS = Table(
    "worker_status",
    (
        ("worker_id", "VARCHAR"),
        ("at", "DOUBLE"),
        ("status", "VARCHAR"),
        ("reason", "VARCHAR"),
    ),
)


class Workers:
    """Owns `workers` (current row per worker) and `worker_status` (one row per change)."""

    name = "workers"
    tables = (WORKERS, WORKER_STATUS)

    def apply(self, batch: Batch, writes: Writes) -> None:
        latest = {}
        history = []
        for f in batch.accepted("worker"):
            w = f.worker
            if w is not None:
                state = w.state
                latest[state.worker_id] = (
                    state.worker_id,
                    w.hostname,
                    w.platform,
                    w.cpus,
                    w.memory_gb,
                    w.gpus,
                    w.gpu_names,
                    w.labels,
                    w.hardware,
                    state.slots,
                    state.status,
                    w.registered_at,
                    w.changed_at,
                    state.reason or None,
                )
                history.append((state.worker_id, f.event.at, state.status, state.reason or None))
        writes.insert(WORKERS, list(latest.values()), replace=True)
        writes.insert(WORKER_STATUS, history)

    def restore(self, con: duckdb.DuckDBPyConnection, aggregates: Aggregates) -> None:
        for row in con.execute(WORKERS.select()).fetchall():
            aggregates.workers[row[0]] = _entry(row)


def _entry(row: tuple) -> WorkerEntry:
    """A worker's entry from its row: the columns hold everything `evolve_worker` reads."""
    wid, host, plat, cpus, mem, gpus, gpu_names, labels, hw, slots, status, reg, changed = row[:13]
    reason = row[13]
    caps = Capabilities(plat, host, cpus, mem, labels=tuple(labels.split(",")) if labels else ())
    registered = WorkerRegistered(
        id="", at=reg, actor="", worker_id=wid, capabilities=caps, slots=slots
    )
    state = WorkerState(wid, registered, status, reason or "")
    return WorkerEntry(state, host, plat, cpus, mem, gpus, gpu_names, labels, hw, reg, changed)


PROJECTION = Workers()
