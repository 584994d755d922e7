"""The plugin a session-mode child registers: it runs batches of node ids on request.

pytest collects once; then `pytest_runtestloop` reads `RunBatch` commands (JSON lines) from
a dedicated pipe and runs each batch's items through pytest's normal
`pytest_runtest_protocol`, streaming one `CaseDone` per item and a `BatchDone` per batch over
another dedicated pipe.  stdout and stderr stay the test's and pytest's own.

Fixture scope across batches: each item runs with `nextitem` set to the next item of the same
batch and the last item with `nextitem=None`, so pytest tears down every fixture (module,
class and session scoped too) at the end of each batch, exactly as at the end of a plain
pytest run.  Scoped fixtures are therefore shared within a batch, never across batches.

`-x`/`--maxfail` do not stop a session: stopping is the scheduler's decision, not the child's.
"""

from __future__ import annotations

import os

import pytest

from .collector import CollectionRecorder
from .item_outcome import combine
from .measure import Measurement
from .wire import BatchDone, CaseDone, ChildMessage, Ready, RunBatch, WireCase, decode, encode


class BatchLoop:
    """Owns the command and result pipes, the collection errors, and the running item's reports."""

    def __init__(
        self, command_fd: int, result_fd: int, measurement: Measurement | None = None
    ) -> None:
        self._commands = os.fdopen(command_fd, "rb")
        self._measurement = measurement  # saved before each BatchDone: the parent ships it
        self._result_fd = result_fd
        # What collect mode reports, kept here too: import failures explain missing node
        # ids, and the whole collection lets an early session stand in for a collect run.
        self._collection = CollectionRecorder(None)
        self._reports: list[pytest.TestReport] = []

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """Runs after each collector (directory, module, class)."""
        self._collection.pytest_collectreport(report)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Runs after each phase (setup, call, teardown) of the running item."""
        self._reports.append(report)

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        """Replaces pytest's loop: serve batches until the parent closes the command pipe.

        Runs even when some modules failed to import; their node ids are simply not served.
        """
        items = {item.nodeid: item for item in session.items}
        errors = tuple(self._collection.errors)
        self._send(Ready(tuple(items), errors, self._collection.collected(session)))
        for line in self._commands:
            command = decode(line)
            if not isinstance(command, RunBatch):
                raise TypeError(f"expected a batch to run, got {command!r}")
            nodeids = command.nodeids
            for index, nodeid in enumerate(nodeids):
                item = items.get(nodeid)
                if item is None:
                    case = WireCase(nodeid, "error", message=f"not collected: {nodeid}")
                    self._send(CaseDone(case))
                    continue
                following = nodeids[index + 1] if index + 1 < len(nodeids) else None
                nextitem = items.get(following) if following is not None else None
                self._reports = []
                item.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                self._send(CaseDone(combine(nodeid, self._reports, item.config)))
            if self._measurement is not None:
                self._measurement.save()
            self._send(BatchDone())
        return True

    def _send(self, message: ChildMessage) -> None:
        # One unbuffered write per message: whatever was sent survives a crash of this process.
        data = memoryview(encode(message))
        while data:
            data = data[os.write(self._result_fd, data) :]
