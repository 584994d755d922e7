"""Benchmark results in long form: one row per metric a completed command task reported."""

from __future__ import annotations

import duckdb

from events.catalogue import Metric, TaskCompleted
from projections.bulk import insert, to_json
from projections.projection import Batch

COLUMNS = (
    "run_id",
    "task_id",
    "attempt",
    "name",
    "value",
    "unit",
    "direction",
    "dims",
    "hardware",
    "worker_id",
    "commit",
    "branch",
    "at",
)


def metrics_of(event: TaskCompleted) -> tuple[Metric, ...]:
    """The long form when the worker sent it, else the short name -> value map."""
    if event.results:
        return event.results
    return tuple(Metric(name, value) for name, value in event.metrics.items())


class Results:
    """Owns `results` (append-only)."""

    name = "results"
    tables = ("results",)

    def apply(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
        rows = []
        for f in batch.of(TaskCompleted):
            event: TaskCompleted = f.event  # type: ignore[assignment]
            if not event.results and not event.metrics:
                continue
            assert f.task is not None
            labels = f.run.labels if f.run else {}
            hardware = f.worker.hardware if f.worker else None
            for m in metrics_of(event):
                rows.append(
                    (
                        f.task.run_id,
                        event.task_id,
                        event.attempt,
                        m.name,
                        m.value,
                        m.unit or None,
                        m.direction,
                        # The metric's own dims only: run labels (a PR number, a phase) would
                        # make every run its own series and nothing comparable; they stay in
                        # runs.labels, and commit/branch have their own columns.
                        to_json(m.dims),
                        hardware,
                        event.worker_id or None,
                        labels.get("commit"),
                        labels.get("branch"),
                        event.at,
                    )
                )
        insert(con, "results", COLUMNS, rows)


PROJECTION = Results()
