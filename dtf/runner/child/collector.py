"""The plugin a collect-mode child registers: it writes what pytest collected as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from .failure_text import summarize, truncate_middle
from .item_outcome import skip_reason
from .requirements import MarkerError, requirements_of
from .wire import Collected, WireCase, WireItem


class CollectReport:
    """Owns the collection errors and collector skips seen so far, and the output path."""

    def __init__(self, out: Path) -> None:
        self._out = out
        self._skipped: list[WireCase] = []
        self._errors: list[WireCase] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Runs after each collector (directory, module, class); keeps failures and skips."""
        if report.failed:
            self._errors.append(collect_error(report))
        elif report.skipped:
            self._skipped.append(
                WireCase(nodeid=report.nodeid, outcome="skipped", message=skip_reason(report))
            )

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Runs once collection, `-k`/`-m` selection and deselection are done."""
        items: list[WireItem] = []
        for item in session.items:
            try:
                items.append(WireItem(nodeid=item.nodeid, requirements=requirements_of(item)))
            except MarkerError as exc:
                self._errors.append(WireCase(nodeid=item.nodeid, outcome="error", message=str(exc)))
        doc = Collected(tuple(items), tuple(self._skipped), tuple(self._errors))
        self._out.write_bytes(doc.to_bytes())


def collect_error(report: pytest.CollectReport) -> WireCase:
    """A failed collector as an error case carrying pytest's text."""
    text = str(report.longrepr)
    return WireCase(
        nodeid=report.nodeid,
        outcome="error",
        message=summarize(text) or "collection failed",
        longrepr=truncate_middle(text),
    )
