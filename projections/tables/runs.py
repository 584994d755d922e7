"""Runs: one row per submitted run, completed when it finishes."""

from __future__ import annotations

import duckdb

from projections.bulk import insert, to_json
from projections.context import RunEntry
from projections.projection import Batch

COLUMNS = (
    "run_id",
    "submitted_at",
    "actor",
    "bundle",
    "root",
    "commit",
    "branch",
    "labels",
    "task_count",
    "total_cases",
    "finished_at",
    "cancelled",
    "counts",
)


def run_row(entry: RunEntry) -> tuple:
    s = entry.state.submitted
    fin = entry.state.finished
    return (
        s.run_id,
        s.at,
        s.actor,
        s.bundle,
        s.root,
        entry.commit,
        entry.branch,
        to_json(s.labels),
        entry.task_count,
        s.total_cases,
        fin.at if fin else None,
        fin.cancelled if fin else None,
        to_json(fin.counts) if fin else None,
    )


class Runs:
    """Owns `runs`."""

    name = "runs"
    tables = ("runs",)

    def apply(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
        latest = {f.run.state.run_id: f.run for f in batch.accepted("run") if f.run is not None}
        insert(con, "runs", COLUMNS, [run_row(e) for e in latest.values()], replace=True)


PROJECTION = Runs()
