"""Set-wise writes: rows staged as numpy columns and loaded with one INSERT ... SELECT.

DuckDB's `executemany` manages about a thousand rows a second; scanning registered numpy
object arrays is a few hundred thousand.  Rows are tuples in the order of `columns`.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import msgspec
import numpy as np


def insert(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
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
    staged = np.empty((len(rows), len(columns)), dtype=object)
    # Filling a preallocated array keeps numpy from treating tuple values as dimensions.
    staged[:] = rows
    name = f"_staged_{table}"
    con.register(name, {col: staged[:, i] for i, col in enumerate(columns)})
    try:
        names = ", ".join(f'"{c}"' for c in columns)
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        con.execute(f"{verb} INTO {table} ({names}) SELECT {names} FROM {name} {on_conflict}")
    finally:
        con.unregister(name)


_json = msgspec.json.Encoder(order="sorted")


def to_json(value: object) -> str:
    """Canonical JSON text for a JSON column (sorted keys, so equal values compare equal)."""
    return _json.encode(value).decode()
