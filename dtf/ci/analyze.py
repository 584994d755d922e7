"""`dtf ci --analyze`: each test's declared requirements beside what its source suggests.

The suite is collected as `dtf run` would (declared `dtf_requires` markers included), each
test file is read once and analysed (`dtf.ci.analysis`), and a parametrized test is one row.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.table import Table

from dtf.ci.analysis import FileHints, Finding, analyse, function_id, qualname, suggested
from dtf.client.options import RunOptions
from dtf.core.requirements import spec
from dtf.runner.collect import CollectedItem, collect
from events.catalogue import Requirements


def findings(root: Path, items: Sequence[CollectedItem]) -> list[Finding]:
    """The tests that declare requirements or whose source hints at some, in suite order."""
    files: dict[str, FileHints] = {}
    groups: dict[tuple[str, Requirements], list[CollectedItem]] = {}
    for item in items:
        groups.setdefault((function_id(item.nodeid), item.requirements), []).append(item)
    found = []
    for (test, declared), group in groups.items():
        path = group[0].path
        if path not in files:
            files[path] = analyse(_source(root / path))
        hints = files[path].of(qualname(test))
        if hints or declared != Requirements():
            found.append(Finding(test, len(group), declared, suggested(hints), tuple(hints)))
    return found


def analyze(opts: RunOptions, console: Console) -> int:
    """Collect, analyse and print the table; 0 (suggestions are advice, not failures)."""
    items = collect(
        opts.root, [*opts.paths, *opts.pytest_args], python=opts.python or sys.executable
    ).items
    rows = findings(opts.root, items)
    render(rows, len(items), console)
    return 0


def render(rows: Sequence[Finding], total: int, console: Console) -> None:
    """One table per test file (the file's path above it, each test by its name in it)."""
    by_file: dict[str, list[Finding]] = {}
    for row in rows:
        by_file.setdefault(row.test.partition("::")[0], []).append(row)
    style = {"missing": "yellow", "ok": "green", "declared": "dim"}
    for path, file_rows in by_file.items():
        console.print(path, style="bold", markup=False, highlight=False)
        table = Table(box=None, padding=(0, 1), pad_edge=False)
        # Folded, never cut: the test's name is what the reader searches for.
        for column in ("test", "declared", "suggested"):
            table.add_column(column, overflow="fold")
        table.add_column("status", no_wrap=True)
        table.add_column("why", overflow="fold")
        for row in file_rows:
            name = row.test.partition("::")[2]
            table.add_row(
                name + (f" ({row.items} items)" if row.items > 1 else ""),
                spec(row.declared) or "-",
                spec(row.wanted) or "-",
                f"[{style[row.status]}]{row.status}[/]",
                row.reasons() or "a dtf_requires marker",
            )
        console.print(table)
    lacking = [r for r in rows if r.status == "missing"]
    console.print(
        f"analysed {total} test(s): {len(rows)} with hardware needs, {len(lacking)} not declared",
        markup=False,
    )
    if lacking:
        example = lacking[0]
        console.print(
            f"declare them with @pytest.mark.dtf_requires(...), e.g. for {example.test}: "
            f"@pytest.mark.dtf_requires({_marker_args(example.lacking)})",
            markup=False,
        )


def undeclared(root: Path, items: Sequence[CollectedItem]) -> list[Finding]:
    """The findings whose suggestions are not declared (what `dtf ci` reports after a run)."""
    return [f for f in findings(root, items) if f.status == "missing"]


def _marker_args(req: Requirements) -> str:
    return ", ".join(f"{key}={value!r}" for key, value in _fields(req))


def _fields(req: Requirements) -> list[tuple[str, object]]:
    return [
        (key, value)
        for key in ("platform", "memory_gb", "gpus", "gpu_vendor")
        if (value := getattr(req, key))
    ]


def _source(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
