"""What a batch writes: statements staged in Python, run later on the projector's connection.

A projection does not touch DuckDB: its `apply` adds rows to a `Writes`, staged as numpy
columns (DuckDB's `executemany` manages about a thousand rows a second; scanning registered
numpy arrays is a few hundred thousand), and the projector runs them all in the
batch's transaction.  Rows are tuples in the order of the table's columns.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import duckdb
import msgspec
import numpy as np

from projections.pipeline.table import Table, quoted


class Writes:
    """The statements of one batch, in the order they were added."""

    def __init__(self) -> None:
        # (sql, parameters, name of the staged view and its columns, or "" and None, and
        # whether DuckDB must look at the values of its object columns to type them)
        self._steps: list[tuple[str, list | None, str, dict[str, np.ndarray] | None, bool]] = []

    def insert(
        self, table: Table, rows: Sequence[tuple], *, replace: bool = False, on_conflict: str = ""
    ) -> None:
        """Insert `rows` into `table` in one statement.

        `replace` turns it into INSERT OR REPLACE (rows replace those with the same primary
        key); `on_conflict` is appended verbatim (e.g. an ON CONFLICT ... DO UPDATE clause).
        """
        if rows:
            columns = zip(*rows, strict=True)
            self.insert_columns(table, list(columns), replace=replace, on_conflict=on_conflict)

    def insert_columns(
        self,
        table: Table,
        columns: Sequence[Sequence | np.ndarray],
        *,
        replace: bool = False,
        on_conflict: str = "",
    ) -> None:
        """`insert`, the rows given as columns in the table's order, each a sequence of
        values or an array staged already (`repeated`): a projection whose rows repeat
        values saves building a tuple per row."""
        if not len(columns[0]):
            return
        staged = {
            name: values if isinstance(values, np.ndarray) else _column(values, sql_type)
            for (name, sql_type), values in zip(table.columns, columns, strict=True)
        }
        name = f"_staged_{len(self._steps)}_{table.name}"
        names = ", ".join(map(quoted, table.names))
        verb = "INSERT OR REPLACE" if replace else "INSERT"
        sql = f"{verb} INTO {table.name} ({names}) SELECT {names} FROM {name} {on_conflict}"
        analyze = any(
            values.dtype == object and sql_type.split()[0] not in _TEXT
            for (_, sql_type), values in zip(table.columns, staged.values(), strict=True)
        )
        self._steps.append((sql, None, name, staged, analyze))

    def execute(self, sql: str, parameters: list | None = None) -> None:
        """Run `sql` with `parameters` (no result is read)."""
        self._steps.append((sql, parameters, "", None, False))

    def run(self, con: duckdb.DuckDBPyConnection) -> None:
        """Execute every statement on `con`, in order (inside the caller's transaction).

        DuckDB types each object column it is given by looking at up to 1,000 of its values
        (`pandas_analyze_sample`), ~0.1 ms a column; an object column staged for a text
        column holds text (or None) and needs no look, so the sample is set to 0 for the
        views that hold no other (the setting stays as the last view needed it)."""
        sample = -1  # not set here yet
        for sql, parameters, name, staged, analyze in self._steps:
            if staged is None:
                con.execute(sql, parameters)
                continue
            if sample != (wanted := _ANALYZE_SAMPLE if analyze else 0):
                con.execute(f"SET pandas_analyze_sample = {wanted}")
                sample = wanted
            con.register(name, staged)
            try:
                con.execute(sql)
            finally:
                # After a failed statement DuckDB refuses even this until the caller's
                # ROLLBACK; that error must not replace the statement's own, which says
                # which event to reject (the view is replaced when the name is next used).
                with contextlib.suppress(duckdb.TransactionException):
                    con.unregister(name)


# numpy kinds a column of each SQL type may be staged as: DuckDB reads a typed array as it
# is, where an object array makes it look at every Python value (~15% of a rebuild's time).
_TYPED = {"DOUBLE": "fiu", "INTEGER": "iu", "BIGINT": "iu", "BOOLEAN": "b"}
# SQL types whose staged values are text: an object column of them is read as VARCHAR.
_TEXT = {"VARCHAR", "TEXT", "JSON"}
_ANALYZE_SAMPLE = 1000  # DuckDB's default


def repeated(values: Sequence, sql_type: str, counts: np.ndarray) -> np.ndarray:
    """A column holding `values[i]` `counts[i]` times over, in order."""
    return np.repeat(_column(values, sql_type), counts)


def _column(values: Sequence, sql_type: str) -> np.ndarray:
    """One column of staged rows: typed (NULLs masked) where every value is of its SQL
    type's kind, else an object array, which DuckDB converts value by value as before."""
    kinds = _TYPED.get(sql_type.split()[0])
    if kinds is not None:
        # `None in` is one C loop: most columns have no NULL, and need no mask built.
        nulls = [v is None for v in values] if None in values else None
        present = values if nulls is None else [0 if v is None else v for v in values]
        try:
            typed = np.array(present)
        except (OverflowError, ValueError):
            typed = None
        if typed is not None and typed.ndim == 1 and typed.dtype.kind in kinds:
            return typed if nulls is None else np.ma.masked_array(typed, mask=nulls)
    column = np.empty(len(values), dtype=object)
    # Filling a preallocated array keeps numpy from treating tuple values as dimensions.
    column[:] = values
    return column


_json = msgspec.json.Encoder(order="sorted")


def to_json(value: object) -> str:
    """Canonical JSON text for a JSON column (sorted keys, so equal values compare equal)."""
    return _json.encode(value).decode()
