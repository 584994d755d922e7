"""The plugin a collect-mode child registers: it writes what pytest collected as JSON."""

from __future__ import annotations

from pathlib import Path

import pytest

from .failure_text import summarize, truncate_middle
from .item_outcome import skip_reason
from .requirements import MarkerError, requirements_of
from .wire import Collected, WireCase, WireItem


class CollectionRecorder:
    """Owns the collection errors and collector skips seen so far, and the output path (None:
    a session's, which sends the collection itself)."""

    def __init__(self, out: Path | None) -> None:
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
        if self._out is not None:
            self._out.write_bytes(self.collected(session).to_bytes())

    def collected(self, session: pytest.Session) -> Collected:
        """The items with their checked requirements, the skips and the errors seen."""
        items: list[WireItem] = []
        errors = list(self._errors)
        for item in session.items:
            try:
                items.append(WireItem(nodeid=item.nodeid, requirements=requirements_of(item)))
            except MarkerError as exc:
                errors.append(WireCase(nodeid=item.nodeid, outcome="error", message=str(exc)))
        return Collected(tuple(items), tuple(self._skipped), tuple(errors))

    @property
    def errors(self) -> list[WireCase]:
        """The collectors that failed so far."""
        return self._errors


def collect_error(report: pytest.CollectReport) -> WireCase:
    """A failed collector as an error case carrying pytest's text."""
    text = str(report.longrepr)
    return WireCase(
        nodeid=report.nodeid,
        outcome="error",
        message=summarize(text) or "collection failed",
        longrepr=truncate_middle(text),
    )
