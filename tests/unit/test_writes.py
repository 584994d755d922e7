"""Staged writes: columns typed where DuckDB can take them as they are, NULLs kept, and
anything numpy would get wrong left to DuckDB's own conversion."""

from __future__ import annotations

import duckdb
import numpy as np
import pytest

from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, _column

T = Table(
    "t",
    (("id", "VARCHAR"), ("n", "INTEGER"), ("x", "DOUBLE"), ("ok", "BOOLEAN"), ("s", "BIGINT")),
    key=("id",),
)


def test_numeric_columns_are_typed_and_nulls_masked() -> None:
    assert _column((1, 2), "INTEGER").dtype == np.int64
    assert _column((1, 2.5), "DOUBLE").dtype == np.float64
    assert _column((True, False), "BOOLEAN").dtype == np.bool_
    masked = _column((1.5, None), "DOUBLE")
    assert isinstance(masked, np.ma.MaskedArray) and list(masked.mask) == [False, True]
    # Not of the column's kind: numpy would truncate or overflow, DuckDB casts or refuses.
    for values, sql_type in (((1, 2.5), "INTEGER"), ((2**70,), "BIGINT"), (("a",), "DOUBLE")):
        assert _column(values, sql_type).dtype == object, (values, sql_type)
    assert _column(("a", None), "VARCHAR").dtype == object


def test_rows_read_back_as_written() -> None:
    rows = [
        ("a", 1, 0.5, True, 2**40),
        ("b", None, None, None, None),
        ("c", 3, 2, False, 7),  # an int in a DOUBLE column
    ]
    con = duckdb.connect()
    con.execute(T.ddl())
    writes = Writes()
    writes.insert(T, rows)
    writes.insert(T, [("c", 4, 1.25, True, 8)], replace=True)
    writes.run(con)
    assert con.execute(T.select() + " ORDER BY id").fetchall() == [
        ("a", 1, 0.5, True, 2**40),
        ("b", None, None, None, None),
        ("c", 4, 1.25, True, 8),
    ]


def test_a_value_duckdb_refuses_still_fails_the_statement() -> None:
    con = duckdb.connect()
    con.execute(T.ddl())
    writes = Writes()
    writes.insert(T, [("a", "not a number", 0.0, True, 1)])
    with pytest.raises(duckdb.ConversionException):
        writes.run(con)


def test_object_columns_of_numbers_are_typed_by_their_values_after_text_only_views() -> None:
    # DuckDB is spared looking at the values of views that hold only text (its sample is
    # set to 0 for them); one with numbers in an object column must still be looked at:
    # read as a DOUBLE, 2.5 is cast to the INTEGER 2 (to even), read as the text "2.5", 3.
    con = duckdb.connect()
    con.execute(T.ddl())
    writes = Writes()
    writes.insert(T, [("a", 1, 0.5, True, 1)])
    writes.insert(T, [("b", 2.5, 0.5, True, 1), ("c", 1, 0.5, True, 1)])
    writes.insert(T, [("d", 1, 0.5, True, 1)])
    writes.run(con)
    assert con.execute("SELECT id, n FROM t ORDER BY id").fetchall() == [
        ("a", 1),
        ("b", 2),
        ("c", 1),
        ("d", 1),
    ]
