"""Benchmark results in long form: one row per metric a completed command task reported."""

from __future__ import annotations

from events.catalogue import Metric, TaskCompleted
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, to_json

# One row per Metric of a TaskCompleted (long form); dims are the metric's own dims only (run
# labels stay in runs.labels, commit/branch have their own columns, so a series is name x
# dims x hardware); `hardware` is the worker's hardware class.
RESULTS = Table(
    "results",
    (
        ("run_id", "VARCHAR"),
        ("task_id", "VARCHAR"),
        ("attempt", "INTEGER"),
        ("name", "VARCHAR"),
        ("value", "DOUBLE"),
        ("unit", "VARCHAR"),
        ("direction", "VARCHAR"),
        ("dims", "JSON"),
        ("hardware", "VARCHAR"),
        ("worker_id", "VARCHAR"),
        ("commit", "VARCHAR"),
        ("branch", "VARCHAR"),
        ("at", "DOUBLE"),
    ),
)


def metrics_of(event: TaskCompleted) -> tuple[Metric, ...]:
    """The long form when the worker sent it, else the short name -> value map."""
    if event.results:
        return event.results
    return tuple(Metric(name, value) for name, value in event.metrics.items())


class Results:
    """Owns `results` (append-only)."""

    name = "results"
    tables = (RESULTS,)

    def apply(self, batch: Batch, writes: Writes) -> None:
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
        writes.insert(RESULTS, rows)


PROJECTION = Results()
