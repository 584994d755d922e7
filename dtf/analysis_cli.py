"""Analysis commands over the DuckDB read models (being written; see issue #4)."""

from __future__ import annotations

COMMANDS: set[str] = set()


def add_commands(sub, server_arg) -> None:
    return None


def run(args, console, connect_url) -> int:
    raise NotImplementedError
