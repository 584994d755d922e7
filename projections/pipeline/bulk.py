"""Set-wise writes: rows staged as numpy columns and loaded with one INSERT ... SELECT.

DuckDB's `executemany` manages about a thousand rows a second; scanning registered numpy
object arrays is a few hundred thousand.  Rows are tuples in the order of the table's columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import msgspec
import numpy as np

from projections.pipeline.table import Table, quoted


def insert(
    con: duckdb.DuckDBPyConnection,
    table: Table,
    rows: Sequence[tuple],
    *,
    replace: bool = False,
    on_conflict: str = "",
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
    name = f"_staged_{table.name}"
    con.register(name, {col: staged[:, i] for i, col in enumerate(columns)})
    try:
        names = ", ".join(map(quoted, columns))
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        con.execute(f"{verb} INTO {table.name} ({names}) SELECT {names} FROM {name} {on_conflict}")
    finally:
        con.unregister(name)


_json = msgspec.json.Encoder(order="sorted")


def to_json(value: object) -> str:
    """Canonical JSON text for a JSON column (sorted keys, so equal values compare equal)."""
    return _json.encode(value).decode()
