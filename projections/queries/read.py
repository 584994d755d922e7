"""Reading the contract tables (`projections.pipeline.schema`) into plain rows.

This is the only module of the analyses that talks to DuckDB. It opens the file read-only,
checks that the tables exist, and returns frozen dataclasses in time order; everything after
it is a pure function of these rows. DuckDB exceptions become `ProjectionError` here.
The column `at` is always quoted: AT is a keyword in DuckDB's grammar.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from dtf.errors import ProjectionError
from projections.pipeline.db_errors import translate

# The tables the analyses read; a file without them was not built by `dtf replay`.
REQUIRED_TABLES = ("runs", "test_cases", "results", "errors")

Dims = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run: when it was submitted and which code it ran."""

    run_id: str
    submitted_at: float | None
    commit: str
    branch: str


@dataclass(frozen=True, slots=True)
class CaseRow:
    """One test item's outcome in one attempt; `at` is when its task finished."""

    run_id: str
    nodeid: str
    outcome: str
    duration: float | None
    commit: str
    branch: str
    worker_id: str
    at: float | None


@dataclass(frozen=True, slots=True)
class ResultRow:
    """One benchmark measurement; `dims` are sorted `(key, value)` pairs."""

    run_id: str
    name: str
    value: float
    unit: str
    direction: str
    dims: Dims
    hardware: str
    commit: str
    at: float | None


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One recorded error with where it happened."""

    at: float | None
    run_id: str
    nodeid: str
    worker_id: str
    hardware: str
    category: str
    severity: str
    message: str
    fingerprint: str


def open_db(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a read-model file; ProjectionError when it is not one."""
    if not path.is_file():
        raise ProjectionError(f"no read-model database at {path} (build it with `dtf replay`)")
    try:
        con = duckdb.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        raise translate(exc, path) from None
    present = {row[0] for row in _fetch(con, "SELECT table_name FROM information_schema.tables")}
    missing = [table for table in REQUIRED_TABLES if table not in present]
    if missing:
        con.close()
        raise ProjectionError(
            f"{path} is not a dtf read model (missing tables: {', '.join(missing)})"
        )
    return con


def runs(con: duckdb.DuckDBPyConnection) -> list[RunRow]:
    """All runs, oldest first."""
    rows = _fetch(
        con,
        "SELECT run_id, submitted_at, commit, branch FROM runs "
        "ORDER BY submitted_at NULLS FIRST, run_id",
    )
    return [RunRow(r[0], r[1], r[2] or "", r[3] or "") for r in rows]


def cases(
    con: duckdb.DuckDBPyConnection,
    *,
    since: float | None = None,
    run_ids: Sequence[str] | None = None,
) -> list[CaseRow]:
    """Test outcomes finished at or after `since` (all when None), of `run_ids` when given."""
    where, params = _filters("finished_at", since, run_ids)
    rows = _fetch(
        con,
        "SELECT run_id, nodeid, outcome, duration, commit, branch, worker_id, finished_at "
        f"FROM test_cases {where} ORDER BY finished_at NULLS FIRST, run_id, nodeid, attempt",
        params,
    )
    return [
        CaseRow(
            r[0] or "",
            r[1] or "",
            r[2] or "",
            _finite(r[3]),
            r[4] or "",
            r[5] or "",
            r[6] or "",
            r[7],
        )
        for r in rows
    ]


def results(
    con: duckdb.DuckDBPyConnection,
    *,
    since: float | None = None,
    run_ids: Sequence[str] | None = None,
) -> list[ResultRow]:
    """Benchmark measurements taken at or after `since`, of `run_ids` when given; missing or
    non-finite values are left out."""
    where, params = _filters('"at"', since, run_ids)
    rows = _fetch(
        con,
        'SELECT run_id, name, value, unit, direction, dims, hardware, commit, "at" FROM results '
        f'{where} ORDER BY "at" NULLS FIRST, run_id, task_id, attempt',
        params,
    )
    return [
        ResultRow(
            run_id=r[0] or "",
            name=r[1] or "",
            value=float(r[2]),
            unit=r[3] or "",
            direction=r[4] if r[4] in ("lower", "higher") else "lower",
            dims=parse_dims(r[5]),
            hardware=r[6] or "",
            commit=r[7] or "",
            at=r[8],
        )
        for r in rows
        if _finite(r[2]) is not None
    ]


def errors(con: duckdb.DuckDBPyConnection, *, since: float | None = None) -> list[ErrorRow]:
    """Recorded errors at or after `since`, oldest first."""
    where, params = _filters('"at"', since, None)
    rows = _fetch(
        con,
        'SELECT "at", run_id, nodeid, worker_id, hardware, category, severity, message, '
        f'fingerprint FROM errors {where} ORDER BY "at" NULLS FIRST',
        params,
    )
    return [ErrorRow(r[0], *(value or "" for value in r[1:])) for r in rows]


def parse_dims(raw: str | dict[str, Any] | None) -> Dims:
    """A dims JSON object as sorted `(key, value)` pairs, values as strings."""
    if raw is None or raw == "":
        return ()
    value = json.loads(raw) if isinstance(raw, str) else raw
    if not isinstance(value, dict):
        return ()
    return tuple(
        sorted((str(k), v if isinstance(v, str) else json.dumps(v)) for k, v in value.items())
    )


def _finite(value: float | None) -> float | None:
    """`value`, or None when it is missing, NaN or infinite (no statistic can use those)."""
    return value if value is not None and math.isfinite(value) else None


def _filters(
    time_column: str, since: float | None, run_ids: Sequence[str] | None
) -> tuple[str, list[Any]]:
    """A WHERE clause and its parameters for an optional time bound and run list."""
    clauses: list[str] = []
    params: list[Any] = []
    if since is not None:
        clauses.append(f"{time_column} >= ?")
        params.append(since)
    if run_ids is not None:
        clauses.append("list_contains(?, run_id)")
        params.append(list(run_ids))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _fetch(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None
) -> list[tuple[Any, ...]]:
    try:
        return con.execute(sql, params or []).fetchall()
    except duckdb.Error as exc:
        raise ProjectionError(f"read-model query failed: {_first_line(exc)}") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
