"""One outcome per test item, from pytest's own categorisation of its phase reports.

pytest reports setup, call and teardown separately and counts them separately (a test whose
call passed but whose teardown failed is "1 passed, 1 error").  dtf keeps one result per
item: any phase pytest calls an "error" makes the item an error; otherwise a failed subtest
(`self.subTest`, the `subtests` fixture) makes it failed, even where pytest reports the test
itself as passed beside its SUBFAILED line; otherwise the call phase decides; an item skipped
(or xfailed) in setup takes that category.

Beside that one outcome, each result carries pytest's own tally of the item's reports (the
categories its terminal counts: "passed", "error", "subtests passed", ...), so that dtf's
final line can say exactly what plain pytest's says.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from typing import get_args

import pytest

from .failure_text import first_line, truncate_middle
from .wire import Outcome, WireCase

OUTCOMES: frozenset[str] = frozenset(get_args(Outcome))
PHASES = ("setup", "call", "teardown")


def phase_category(report: pytest.TestReport, config: pytest.Config) -> str:
    """pytest's category for one phase report ("" for a passing setup or teardown)."""
    status = config.hook.pytest_report_teststatus(report=report, config=config)
    category = status[0] if status else ""
    if category in OUTCOMES or category == "":
        return str(category)
    # A plugin's own category: count it as pytest's terminal would by default.
    if report.failed:
        return "failed" if report.when == "call" else "error"
    return "" if report.when != "call" else str(report.outcome)


def combine(nodeid: str, reports: Sequence[pytest.TestReport], config: pytest.Config) -> WireCase:
    """The one result of an item, given every report it produced (in order)."""
    case = _combine(nodeid, reports, config)
    tally = tally_of(reports, config)
    if tally != {case.outcome: 1}:
        case = dataclasses.replace(case, tally=tally)
    return case


def _combine(nodeid: str, reports: Sequence[pytest.TestReport], config: pytest.Config) -> WireCase:
    # Plugins that rerun a test (pytest-rerunfailures) mark earlier attempts "rerun".
    kept = [report for report in reports if report.outcome != "rerun"]
    subtests = [report for report in kept if is_subtest(report)]
    # The last report of each phase decides it, among the item's own (subtests report
    # during "call", before the test's own call report).
    final: dict[str, pytest.TestReport] = {
        report.when: report for report in kept if not is_subtest(report)
    }
    categories = {when: phase_category(report, config) for when, report in final.items()}
    duration = sum(report.duration for report in reports if not is_subtest(report))
    errored = [when for when in PHASES if categories.get(when) == "error"]
    if errored:
        report = final[errored[0]]
        return _case(nodeid, "error", duration, f"error in {errored[0]}: {_crash(report)}", kept)
    failed_subtest = next((report for report in subtests if report.failed), None)
    if failed_subtest is not None:
        message = f"{_subtest_word(failed_subtest, config)}: {_crash(failed_subtest)}"
        return _case(nodeid, "failed", duration, message, kept)
    call = categories.get("call")
    if call:
        return _case(nodeid, _outcome(call), duration, _message(final["call"], call), kept)
    setup = categories.get("setup")
    if setup in ("skipped", "xfailed"):
        return _case(nodeid, _outcome(setup), duration, _message(final["setup"], setup), kept)
    return WireCase(nodeid=nodeid, outcome="error", duration=duration, message="item did not run")


def tally_of(reports: Sequence[pytest.TestReport], config: pytest.Config) -> dict[str, int]:
    """What pytest's terminal adds to its counts for these reports: one per report whose
    category is not empty and that counts towards the summary, subtests and reruns too."""
    tally: Counter[str] = Counter()
    for report in reports:
        status = config.hook.pytest_report_teststatus(report=report, config=config)
        if status and status[0] and getattr(report, "count_towards_summary", True):
            tally[str(status[0])] += 1
    return dict(tally)


def is_subtest(report: pytest.TestReport) -> bool:
    """A subtest's report: pytest's `SubtestReport` (pytest-subtests' on pytest 8), a
    subclass of `TestReport` sent during the call phase."""
    return type(report) is not pytest.TestReport and isinstance(report, pytest.TestReport)


def _subtest_word(report: pytest.TestReport, config: pytest.Config) -> str:
    """pytest's word for a subtest's result, e.g. "SUBFAILED(i=2)"."""
    status = config.hook.pytest_report_teststatus(report=report, config=config)
    word = status[2] if status else ""
    if isinstance(word, tuple):
        word = word[0]
    return str(word) or f"SUBFAILED {_label(report)}"


def _outcome(category: str) -> Outcome:
    return category if category in OUTCOMES else "error"  # type: ignore[return-value]


def _message(report: pytest.TestReport, category: str) -> str:
    if category in ("xfailed", "xpassed"):
        return first_line(getattr(report, "wasxfail", "")) or category
    if category == "skipped":
        return first_line(skip_reason(report))
    if category in ("failed", "error"):
        return _crash(report)
    return ""


def _crash(report: pytest.TestReport) -> str:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is not None:
        return first_line(crash.message)
    return first_line(report.longreprtext)


def _case(
    nodeid: str,
    outcome: Outcome,
    duration: float,
    message: str,
    reports: list[pytest.TestReport],
) -> WireCase:
    longrepr = _failure_text(reports) if outcome in ("failed", "error") else ""
    return WireCase(nodeid, outcome, duration, message, longrepr)


def _failure_text(reports: list[pytest.TestReport]) -> str:
    """Each failed report's traceback (phases, subtests), then the captured output."""
    failed = [report for report in reports if report.failed]
    if not failed:
        return ""
    if len(failed) == 1:
        parts = [failed[0].longreprtext]
    else:
        parts = [f"--- {_label(report)} ---\n{report.longreprtext}" for report in failed]
    # Sections accumulate over the phases, so the last failed report holds all of them.
    parts.extend(f"{'-' * 10} {title} {'-' * 10}\n{body}" for title, body in failed[-1].sections)
    return truncate_middle("\n".join(parts))


def _label(report: pytest.TestReport) -> str:
    """The phase, or for a subtest (a `TestReport` subclass) its own heading."""
    if type(report) is pytest.TestReport:
        return report.when or ""
    return report.head_line or report.when or ""


def skip_reason(report: pytest.CollectReport | pytest.TestReport) -> str:
    """The reason of a skip: pytest stores it as `(path, line, "Skipped: reason")`."""
    longrepr = report.longrepr
    reason = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr or "")
    return reason.removeprefix("Skipped: ")
