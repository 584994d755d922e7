"""`dtf report --format md`: the report as GitHub-flavoured Markdown tables."""

from __future__ import annotations

from collections.abc import Sequence

from projections.reports.content import Report
from projections.reports.sections import heading_facts, sections


def render(report: Report) -> str:
    parts = ["# dtf report", "", *(f"- {fact}" for fact in heading_facts(report)), ""]
    for title, header, rows, empty in sections(report):
        parts += [f"## {title}", ""]
        parts += [table(header, rows), ""] if rows else [f"_{empty}_", ""]
    return "\n".join(parts)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = [_row(header), _row(["---"] * len(header))]
    lines += [_row(row) for row in rows]
    return "\n".join(lines)


def _row(cells: Sequence[str]) -> str:
    # A pipe inside a cell would end it; nodeids and messages may hold one.
    return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"
