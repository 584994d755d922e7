"""What `dtf ci` reports on: the finished run, the build it belongs to, and the verdict of
the regression check."""

from __future__ import annotations

from dataclasses import dataclass

from dtf.ci.analysis import Finding
from dtf.ci.providers import CiContext
from events.catalogue import CaseResult
from projections.queries.regressions import MetricChange

FAILING = frozenset({"failed", "error"})


@dataclass(frozen=True, slots=True)
class RegressionCheck:
    """The comparison with the baseline: `note` says what was compared, or why nothing was."""

    baseline: str
    changes: tuple[MetricChange, ...]
    note: str

    @property
    def regressions(self) -> tuple[MetricChange, ...]:
        return tuple(c for c in self.changes if c.verdict == "regression")


@dataclass(frozen=True, slots=True)
class CiResult:
    context: CiContext
    run_id: str
    cases: tuple[CaseResult, ...]
    seconds: float
    exit_code: int
    quarantined: tuple[CaseResult, ...] = ()  # failures that did not fail the build
    check: RegressionCheck | None = None  # None: not asked for
    undeclared: tuple[Finding, ...] = ()  # tests whose source hints at hardware not declared
    coverage: float | None = None  # `--cov`: the combined percentage

    @property
    def failures(self) -> tuple[CaseResult, ...]:
        """The failing cases that count (quarantined ones are listed apart)."""
        excused = {id(c) for c in self.quarantined}
        return tuple(c for c in self.cases if c.outcome in FAILING and id(c) not in excused)

    @property
    def flaky(self) -> tuple[CaseResult, ...]:
        """Tests that passed only after failing (`--reruns`)."""
        return tuple(c for c in self.cases if c.outcome == "passed" and c.reruns)
