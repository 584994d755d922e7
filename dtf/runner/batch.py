"""One batch's results as they arrive, and the `SessionResult` made of them, however it ended.

Pure bookkeeping: no processes, no I/O, so every way a batch can end is testable with values.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence, Set
from dataclasses import dataclass

from dtf.runner.child.wire import WireCase
from events.catalogue import CaseResult, Category


@dataclass(frozen=True)
class SessionResult:
    """The result of `PytestSession.run`.

    `cases` holds exactly one result per requested node id, in request order.  `category` is
    None when the batch ran normally (tests may still have failed); "timeout" when it was
    killed at its deadline; "infrastructure" when the pytest process crashed; "environment"
    when pytest could not start or could not import requested tests here (those cases are
    errors carrying pytest's text).  `message` is one line explaining `category`, "" when None.
    """

    cases: tuple[CaseResult, ...]
    category: Category | None = None
    message: str = ""


class Batch:
    """Owns one requested batch: the node ids asked for, those the session can run, the
    results received so far, and results known without running (ids it cannot run)."""

    def __init__(self, requested: Sequence[str]) -> None:
        self.requested = tuple(requested)
        self.to_run: list[str] = []
        self.done: list[CaseResult] = []
        self._known: dict[int, CaseResult] = {}
        self._environment = ""

    def plan(self, collected: Set[str], errors: Sequence[WireCase]) -> list[str]:
        """Split the request into ids to run and ids the session lacks; returns the former.

        A missing id under a path whose collection failed gets that failure (and makes the
        batch an "environment" failure); any other missing id is "not collected".
        """
        for index, nodeid in enumerate(self.requested):
            if nodeid in collected:
                self.to_run.append(nodeid)
                continue
            error = next((e for e in errors if _covers(e.nodeid, nodeid)), None)
            if error is None:
                self._known[index] = CaseResult(nodeid, "error", message=f"not collected: {nodeid}")
                continue
            self._known[index] = CaseResult(
                nodeid, "error", message=error.message, longrepr=error.longrepr
            )
            if not self._environment:
                where = error.nodeid or "the session"
                self._environment = f"could not collect {where}: {error.message}"
        return self.to_run

    @property
    def running(self) -> str | None:
        """The id being run now: the first one sent without a result yet."""
        return self.to_run[len(self.done)] if len(self.done) < len(self.to_run) else None

    def finished(self) -> SessionResult:
        """Every sent id has its result."""
        cases = self._merge(iter(()))
        if self._environment:
            return SessionResult(cases, "environment", self._environment)
        return SessionResult(cases)

    def failed(self, category: Category, message: str, longrepr: str = "") -> SessionResult:
        """Nothing ran (pytest could not start, or its start timed out)."""
        cases = (CaseResult(n, "error", message=message, longrepr=longrepr) for n in self.requested)
        return SessionResult(tuple(cases), category, message)

    def interrupted(self, category: Category, cause: str, longrepr: str = "") -> SessionResult:
        """The process ended mid-batch: the running id gets `cause`, later ids did not run."""
        running = self.running
        if running is None:
            return self.finished()
        where = f"{cause} while running {running}"
        remaining = [CaseResult(running, "error", message=cause, longrepr=longrepr)]
        remaining += [
            CaseResult(n, "error", message=f"not run: {where}")
            for n in self.to_run[len(self.done) + 1 :]
        ]
        return SessionResult(self._merge(iter(remaining)), category, where)

    def _merge(self, remaining: Iterator[CaseResult]) -> tuple[CaseResult, ...]:
        ran = iter([*self.done, *remaining])
        return tuple(self._known.get(i) or next(ran) for i in range(len(self.requested)))


def _covers(prefix: str, nodeid: str) -> bool:
    """Whether a collector's node id (a directory, module or class) contains `nodeid`."""
    return prefix in ("", ".") or nodeid.startswith((prefix + "::", prefix + "/"))
