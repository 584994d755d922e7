"""DuckDB errors on a read-model file, as the one line a user sees.

DuckDB lets one process open a file at a time (read-only included); the most common failure
is another dtf process holding it, which is named with its PID instead of DuckDB's paragraph.
"""

from __future__ import annotations

import re
from pathlib import Path

import duckdb

from dtf.errors import ProjectionError

_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


def translate(exc: duckdb.Error, db: Path) -> ProjectionError:
    """The ProjectionError to raise for `exc` met on the file `db`."""
    text = " ".join(str(exc).split())
    lock = _LOCK.search(text)
    if lock:
        return ProjectionError(f"{db} is in use by another process (PID {lock[2]}, {lock[1]})")
    return ProjectionError(f"{db}: {type(exc).__name__}: {text}"[:300])
