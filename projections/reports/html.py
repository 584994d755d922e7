"""`dtf report --format html`: one self-contained XHTML file (inline CSS and SVG, no scripts,
no external assets) that is also well-formed XML.

Charts: the history of each series that changed or ended anomalously (then the others, up to
`MAX_CHARTS`), and the means with 95% intervals of each benchmark's hardware classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from projections.queries.series_analysis import SeriesAnalysis
from projections.reports import svg
from projections.reports.content import Report
from projections.reports.sections import heading_facts, sections

MAX_CHARTS = 40

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem; color: #24292f; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.2rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left; }
th { background: #f6f8fa; }
td { font-variant-numeric: tabular-nums; }
.empty { color: #57606a; font-style: italic; }
.charts svg { display: block; margin: 0.75rem 0; }
pre { background: #f6f8fa; padding: 0.5rem; overflow-x: auto; font-size: 0.8rem; }
"""


def render(report: Report) -> str:
    body = ["<h1>dtf report</h1>", "<ul>"]
    body += [f"<li>{escape(fact)}</li>" for fact in heading_facts(report)]
    body.append("</ul>")
    for title, header, rows, empty in sections(report):
        body.append(f"<h2>{escape(title)}</h2>")
        body.append(table(header, rows) if rows else f'<p class="empty">{escape(empty)}</p>')
    body += _comparison_charts(report)
    body += _history_charts(report.analyses)
    return page("dtf report", body)


def page(title: str, body: Sequence[str]) -> str:
    """A whole self-contained XHTML document around `body` (lines of XHTML)."""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html xmlns="http://www.w3.org/1999/xhtml" lang="en">',
            "<head>",
            '<meta charset="utf-8"/>',
            f"<title>{escape(title)}</title>",
            f"<style>{STYLE}</style>",
            "</head>",
            "<body>",
            *body,
            "</body>",
            "</html>",
            "",
        ]
    )


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    lines = [f"<table><thead><tr>{head}</tr></thead><tbody>"]
    lines += ["<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows]
    lines.append("</tbody></table>")
    return "\n".join(lines)


def _comparison_charts(report: Report) -> list[str]:
    if not report.best:
        return []
    parts = ["<h2>Hardware comparison (mean, 95% interval)</h2>", '<div class="charts">']
    for b in report.best:
        rows = [
            svg.Interval(c.hardware or "-", c.summary.mean, c.summary.ci_low, c.summary.ci_high)
            for c in b.configurations
        ]
        better = "lower" if b.direction == "lower" else "higher"
        parts.append(
            svg.interval_chart(rows, title=f"{b.benchmark} ({better} is better)", unit=b.unit)
        )
    parts.append("</div>")
    return parts


def _history_charts(analyses: Sequence[SeriesAnalysis]) -> list[str]:
    if not analyses:
        return []

    def notable(a: SeriesAnalysis) -> bool:
        return bool(a.changes) or bool(a.anomaly and a.anomaly.anomalous)

    # Series that changed or ended anomalously first: they are why anyone opens the report.
    chosen = sorted(analyses, key=lambda a: (not notable(a), a.series.label))[:MAX_CHARTS]
    parts = ["<h2>History</h2>", '<div class="charts">']
    for a in chosen:
        parts.append(
            svg.line_chart(
                a.series.values,
                title=a.series.label,
                unit=a.series.unit,
                changes=[c.change.index for c in a.changes],
                highlight_last=bool(a.anomaly and a.anomaly.anomalous),
            )
        )
    if len(analyses) > len(chosen):
        parts.append(f'<p class="empty">{len(analyses) - len(chosen)} more series not drawn.</p>')
    parts.append("</div>")
    return parts
