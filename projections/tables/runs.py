"""Runs: one row per submitted run, completed when it finishes."""

from __future__ import annotations

import json

import duckdb

from dtf.core.state import RunState
from events.catalogue import RunFinished, RunSubmitted
from projections.pipeline.aggregates import Aggregates
from projections.pipeline.entries import RunEntry
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, to_json

RUNS = Table(
    "runs",
    (
        ("run_id", "VARCHAR"),
        ("submitted_at", "DOUBLE"),
        ("actor", "VARCHAR"),
        ("bundle", "VARCHAR"),
        ("root", "VARCHAR"),
        ("commit", "VARCHAR"),
        ("branch", "VARCHAR"),
        ("labels", "JSON"),
        ("task_count", "INTEGER"),
        ("total_cases", "INTEGER"),
        ("finished_at", "DOUBLE"),
        ("cancelled", "BOOLEAN"),
        ("counts", "JSON"),
    ),
    key=("run_id",),
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
    tables = (RUNS,)

    def apply(self, batch: Batch, writes: Writes) -> None:
        latest = {f.run.state.run_id: f.run for f in batch.accepted("run") if f.run is not None}
        writes.insert(RUNS, [run_row(e) for e in latest.values()], replace=True)

    def restore(self, con: duckdb.DuckDBPyConnection, aggregates: Aggregates) -> None:
        for row in con.execute(RUNS.select()).fetchall():
            aggregates.runs[row[0]] = _entry(row)


def _entry(row: tuple) -> RunEntry:
    """A run's entry from its row (commit and branch are in its labels too)."""
    run_id, at, actor, bundle, root, _commit, _branch, labels, task_count, total = row[:10]
    fin_at, cancelled, counts = row[10:]
    submitted = RunSubmitted(
        id="",
        at=at,
        actor=actor,
        run_id=run_id,
        bundle=bundle,
        root=root,
        total_cases=total,
        labels=json.loads(labels) if labels else {},
    )
    finished = None
    if fin_at is not None:
        finished = RunFinished(
            id="",
            at=fin_at,
            actor="",
            run_id=run_id,
            counts=json.loads(counts) if counts else {},
            cancelled=bool(cancelled),
        )
    return RunEntry(RunState(submitted, finished=finished), task_count)


PROJECTION = Runs()
