"""A read model's table as one value: its name, its columns with their SQL types, its key.

Each table is declared once, by the module that writes it (`projections/tables/*.py`, or
`projections.pipeline.schema` for the pipeline's own), and everything else is derived from
that declaration: the CREATE TABLE statement, the column order of bulk inserts, the columns a
restore reads.  Every table is derived from the event stream alone; deleting the file and
replaying gives the same rows.  Times are epoch seconds (DOUBLE) as the events carry them;
empty ids and messages are stored as NULL.
"""

from __future__ import annotations

from typing import NamedTuple


class Table(NamedTuple):
    """`columns` are (name, SQL type) pairs in the order rows are written; `key` the primary
    key's columns (none: rows are only appended)."""

    name: str
    columns: tuple[tuple[str, str], ...]
    key: tuple[str, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    def ddl(self) -> str:
        """The CREATE TABLE IF NOT EXISTS statement (names quoted: `at` is a keyword)."""
        parts = [f"{quoted(name)} {sql_type}" for name, sql_type in self.columns]
        if self.key:
            parts.append(f"PRIMARY KEY ({', '.join(map(quoted, self.key))})")
        return f"CREATE TABLE IF NOT EXISTS {self.name} ({', '.join(parts)})"

    def select(self) -> str:
        """SELECT of every column, in declaration order."""
        return f"SELECT {', '.join(map(quoted, self.names))} FROM {self.name}"


def quoted(name: str) -> str:
    """A column name as an SQL identifier."""
    return f'"{name}"'
