"""The pipeline's own tables, and every table of a set of projections.

`projector_state` holds the last applied stream sequence, written in the same transaction as
the rows; `projector_tasks` the exact folded state of unfinished tasks (the projector's own
memory, so that a restart folds exactly as an uninterrupted run would); `rejected_events` the
messages that were not readable events, were refused for their signature or signer, or whose
rows could not be written, with the reason.
The read models' tables are declared by the projections that write them (`projections/tables/`).
"""

from __future__ import annotations

from collections.abc import Iterable

from projections.pipeline.registry import Projection
from projections.pipeline.table import Table

PROJECTOR_STATE = Table(
    "projector_state",
    (
        ("name", "VARCHAR"),
        ("last_seq", "BIGINT NOT NULL"),
    ),
    key=("name",),
)

PROJECTOR_TASKS = Table(
    "projector_tasks",
    (
        ("task_id", "VARCHAR"),
        ("entry", "JSON"),
    ),
    key=("task_id",),
)

REJECTED_EVENTS = Table(
    "rejected_events",
    (
        ("seq", "BIGINT"),
        ("subject", "VARCHAR"),
        ("reason", "VARCHAR"),
        ("raw", "VARCHAR"),
    ),
    key=("seq",),
)

PIPELINE_TABLES = (PROJECTOR_STATE, PROJECTOR_TASKS, REJECTED_EVENTS)


def tables_of(projections: Iterable[Projection]) -> list[Table]:
    """The pipeline's tables, then each projection's, in order, each once."""
    found = {t.name: t for t in PIPELINE_TABLES}
    for projection in projections:
        for table in projection.tables:
            found.setdefault(table.name, table)
    return list(found.values())
