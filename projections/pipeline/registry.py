"""The Projection protocol and the registry of projections by name.

A projection is a small synchronous unit: a name, the `Table`s it owns, and
`apply(batch, writes)`, which turns one `Batch` of folded events into the rows of those tables
(`projections.pipeline.writes`) and touches nothing else: the projector runs the writes.
Each lives in one module under `projections/tables/` that defines `PROJECTION`; `registry()`
finds them, so adding a projection is adding one file.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Protocol, runtime_checkable

import duckdb

from projections.pipeline.aggregates import Aggregates
from projections.pipeline.folded import Batch
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes


class Projection(Protocol):
    """A read model: owns `tables` and writes each batch into them with `apply`."""

    name: str
    tables: tuple[Table, ...]

    def apply(self, batch: Batch, writes: Writes) -> None:
        """Add the batch's rows to `writes` (run later, in the batch's transaction)."""
        ...


@runtime_checkable
class Restoring(Projection, Protocol):
    """A projection whose tables hold aggregate state the fold needs after a restart."""

    def restore(self, con: duckdb.DuckDBPyConnection, aggregates: Aggregates) -> None:
        """Put what the committed tables hold back into `aggregates` (after its own load)."""
        ...


def registry(package: str = "projections.tables") -> dict[str, Projection]:
    """Every module of `package` that defines PROJECTION, by projection name, sorted."""
    found: dict[str, Projection] = {}
    pkg = importlib.import_module(package)
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{package}.{info.name}")
        projection = getattr(module, "PROJECTION", None)
        if projection is not None:
            found[projection.name] = projection
    return dict(sorted(found.items()))
