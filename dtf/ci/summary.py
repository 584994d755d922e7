"""The run's summary for people: Markdown (GitHub's step summary, `summary.md`), a
self-contained HTML page and plain text (Jenkins, GitLab's log), from one list of sections."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dtf.ci.result import CiResult
from dtf.core.outcomes import pytest_counts, summary_line
from dtf.core.requirements import spec
from events.catalogue import CaseResult
from projections.reports import html, markdown
from projections.reports.display import num, pct, pct_interval, short_commit

SLOWEST = 10
MAX_FAILURE_DETAILS = 20  # tracebacks shown in full; the JUnit file has all of them
MAX_DETAIL_LINES = 60
MAX_ROWS = 100


@dataclass(frozen=True, slots=True)
class Section:
    title: str
    header: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]
    more: int = 0  # rows left out
    elsewhere: str = "the JUnit report"  # where the rows left out are


def headline(result: CiResult) -> str:
    """`passed: 120 passed in 3.21s` / `failed: 2 failed, 118 passed in ...`."""
    verdict = "passed" if result.exit_code == 0 else f"failed (exit code {result.exit_code})"
    return f"{verdict}: {summary_line(pytest_counts(result.cases), result.seconds)}"


def facts(result: CiResult) -> list[str]:
    """What the run was: its id, and the build's commit, branch, request and job."""
    ctx = result.context
    found = [f"run {result.run_id}"]
    if ctx.commit:
        found.append(f"commit {short_commit(ctx.commit)}")
    if ctx.branch:
        found.append(f"branch {ctx.branch}")
    if ctx.change:
        found.append(f"request #{ctx.change}" + (f" into {ctx.target}" if ctx.target else ""))
    if ctx.job_url:
        found.append(f"job {ctx.job_url}")
    if result.coverage is not None:
        found.append(f"coverage {result.coverage:.1f}%")
    return found


def sections(result: CiResult) -> list[Section]:
    """The sections with something to show; the regression check's always, when asked for."""
    listed = [
        _cases("Failures", result.failures),
        _cases("Flaky (passed after reruns)", result.flaky, reruns=True),
        _cases("Quarantined failures (did not fail the build)", result.quarantined),
    ]
    chosen = [s for s in listed if s.rows]
    if result.check is not None:
        chosen.append(_regressions(result))
    if result.undeclared:
        chosen.append(_undeclared(result))
    timed = sorted((c for c in result.cases if c.duration), key=lambda c: -c.duration)
    if timed:
        rows = tuple((c.nodeid, f"{c.duration:.2f}s", c.outcome) for c in timed[:SLOWEST])
        chosen.append(Section(f"Slowest {SLOWEST}", ("test", "duration", "outcome"), rows))
    return chosen


def _cases(title: str, cases: Sequence[CaseResult], *, reruns: bool = False) -> Section:
    header = ("test", "outcome", "reruns" if reruns else "message")
    rows = tuple(
        (c.nodeid, c.outcome, str(c.reruns) if reruns else _first_line(c.message or c.longrepr))
        for c in cases[:MAX_ROWS]
    )
    return Section(f"{title}: {len(cases)}", header, rows, max(0, len(cases) - MAX_ROWS))


def _regressions(result: CiResult) -> Section:
    check = result.check
    assert check is not None
    rows = tuple(
        (
            c.metric,
            c.verdict,
            num(c.comparison.baseline_median, c.unit),
            num(c.comparison.candidate_median, c.unit),
            pct(c.comparison.pct_change),
            pct_interval(c.comparison.pct_low, c.comparison.pct_high),
            f"{c.q_value:.4f}",
        )
        for c in check.changes
        if c.verdict != "unchanged"
    )
    header = ("metric", "verdict", "baseline", "this run", "change", "95% interval", "q")
    return Section(f"Regressions against {check.baseline}: {check.note}", header, rows)


def _undeclared(result: CiResult) -> Section:
    rows = tuple((f.test, spec(f.lacking), f.reasons()) for f in result.undeclared[:MAX_ROWS])
    left = max(0, len(result.undeclared) - MAX_ROWS)
    title = f"Hardware needs not declared: {len(result.undeclared)}"
    header = ("test", "suggested dtf_requires", "why")
    return Section(title, header, rows, left, "the output of dtf ci --analyze")


def _first_line(text: str) -> str:
    line = next((s for s in text.splitlines() if s.strip()), "")
    return line if len(line) <= 200 else line[:199] + "…"


def _detail(case: CaseResult) -> str:
    lines = case.longrepr.splitlines() or [case.message]
    if len(lines) > MAX_DETAIL_LINES:
        lines = [f"... ({len(lines) - MAX_DETAIL_LINES} lines above)", *lines[-MAX_DETAIL_LINES:]]
    return "\n".join(lines)


def render_markdown(result: CiResult) -> str:
    mark = "✅" if result.exit_code == 0 else "❌"
    parts = [f"## {mark} dtf: {headline(result)}", "", " · ".join(facts(result)), ""]
    for section in sections(result):
        parts += [f"### {section.title}", ""]
        if section.rows:
            parts.append(markdown.table(section.header, section.rows))
        if section.more:
            parts.append(f"\n_{section.more} more in {section.elsewhere}_")
        parts.append("")
    for case in result.failures[:MAX_FAILURE_DETAILS]:
        # A fence longer than any run of backticks in the text, so that it cannot end early.
        fence = "`" * max(3, _longest_backtick_run(case.longrepr) + 1)
        parts += [
            f"<details><summary>{escape(case.nodeid)}</summary>",
            "",
            fence,
            _detail(case),
            fence,
            "",
            "</details>",
            "",
        ]
    return "\n".join(parts)


def _longest_backtick_run(text: str) -> int:
    longest = run = 0
    for char in text:
        run = run + 1 if char == "`" else 0
        longest = max(longest, run)
    return longest


def render_html(result: CiResult) -> str:
    body = [f"<h1>dtf: {escape(headline(result))}</h1>", "<ul>"]
    body += [f"<li>{escape(fact)}</li>" for fact in facts(result)]
    body.append("</ul>")
    for section in sections(result):
        body.append(f"<h2>{escape(section.title)}</h2>")
        if section.rows:
            body.append(html.table(section.header, section.rows))
        if section.more:
            body.append(f'<p class="empty">{section.more} more in {escape(section.elsewhere)}</p>')
    if result.failures:
        body.append("<h2>Failure details</h2>")
    for case in result.failures[:MAX_FAILURE_DETAILS]:
        body += [f"<h3>{escape(case.nodeid)}</h3>", f"<pre>{escape(_detail(case))}</pre>"]
    return html.page(f"dtf run {result.run_id}", body)


def render_text(result: CiResult) -> str:
    lines = [f"dtf: {headline(result)}", *facts(result)]
    for section in sections(result):
        lines += ["", section.title]
        lines += ["  " + "  ".join(row) for row in section.rows]
        if section.more:
            lines.append(f"  ... {section.more} more in {section.elsewhere}")
    return "\n".join(lines) + "\n"
