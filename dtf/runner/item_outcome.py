"""One outcome per test item, from pytest's own categorisation of its phase reports.

pytest reports setup, call and teardown separately and counts them separately (a test whose
call passed but whose teardown failed is "1 passed, 1 error").  dtf keeps one result per
item: any phase pytest calls an "error" makes the item an error; otherwise the call phase
decides; an item skipped (or xfailed) in setup takes that category.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import get_args

import pytest

from dtf.runner.failure_text import first_line, truncate_middle
from dtf.runner.wire import Outcome, WireCase

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
    # Plugins that rerun a test (pytest-rerunfailures) mark earlier attempts "rerun".
    kept = [report for report in reports if report.outcome != "rerun"]
    # The last report of each phase decides it: subtests report during "call" before the
    # test's own call report.
    final: dict[str, pytest.TestReport] = {report.when: report for report in kept}
    categories = {when: phase_category(report, config) for when, report in final.items()}
    duration = sum(report.duration for report in reports)
    errored = [when for when in PHASES if categories.get(when) == "error"]
    if errored:
        report = final[errored[0]]
        return _case(nodeid, "error", duration, f"error in {errored[0]}: {_crash(report)}", kept)
    call = categories.get("call")
    if call:
        return _case(nodeid, _outcome(call), duration, _message(final["call"], call), kept)
    setup = categories.get("setup")
    if setup in ("skipped", "xfailed"):
        return _case(nodeid, _outcome(setup), duration, _message(final["setup"], setup), kept)
    return WireCase(nodeid=nodeid, outcome="error", duration=duration, message="item did not run")


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
