"""What a batch writes: statements staged in Python, run later on the projector's connection.

A projection does not touch DuckDB: its `apply` adds rows to a `Writes`, staged as numpy
columns (DuckDB's `executemany` manages about a thousand rows a second; scanning registered
numpy object arrays is a few hundred thousand), and the projector runs them all in the
batch's transaction.  Rows are tuples in the order of the table's columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import msgspec
import numpy as np

from projections.pipeline.table import Table, quoted


class Writes:
    """The statements of one batch, in the order they were added."""

    def __init__(self) -> None:
        # (sql, parameters, name of the staged view and its columns, or "" and None)
        self._steps: list[tuple[str, list | None, str, dict[str, np.ndarray] | None]] = []

    def insert(
        self, table: Table, rows: Sequence[tuple], *, replace: bool = False, on_conflict: str = ""
    ) -> None:
        """Insert `rows` into `table` in one statement.

        `replace` turns it into INSERT OR REPLACE (rows replace those with the same primary
        key); `on_conflict` is appended verbatim (e.g. an ON CONFLICT ... DO UPDATE clause).
        """
        if not rows:
            return
        columns = table.names
        staged = np.empty((len(rows), len(columns)), dtype=object)
        # Filling a preallocated array keeps numpy from treating tuple values as dimensions.
        staged[:] = rows
        name = f"_staged_{len(self._steps)}_{table.name}"
        names = ", ".join(map(quoted, columns))
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = f"{verb} INTO {table.name} ({names}) SELECT {names} FROM {name} {on_conflict}"
        self._steps.append((sql, None, name, {c: staged[:, i] for i, c in enumerate(columns)}))

    def execute(self, sql: str, parameters: list | None = None) -> None:
        """Run `sql` with `parameters` (no result is read)."""
        self._steps.append((sql, parameters, "", None))

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        """Execute every statement on `con`, in order (inside the caller's transaction)."""
        for sql, parameters, name, staged in self._steps:
            if staged is None:
                con.execute(sql, parameters)
                continue
            con.register(name, staged)
            try:
                con.execute(sql)
            finally:
                con.unregister(name)


_json = msgspec.json.Encoder(order="sorted")


def to_json(value: object) -> str:
    """Canonical JSON text for a JSON column (sorted keys, so equal values compare equal)."""
    return _json.encode(value).decode()
