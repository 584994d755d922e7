"""Counting a finished run's outcomes, its exit code and its final summary line, as pytest does.

Everything here is a pure function of `CaseResult` values, so a dtf run reads the same as a
plain `pytest` run of the same suite: same counts in the same order, same wording, same exit
code.  The reference is pytest's `_pytest/terminal.py` (`KNOWN_TYPES`, `pluralize`,
`format_session_duration`) and `_pytest/main.py` (`_main`, `pytest_runtestloop`).
"""

from __future__ import annotations

import datetime
from collections import Counter
from collections.abc import Iterable, Mapping

from events.catalogue import CaseResult, Outcome

# pytest's `ExitCode` values; mirrored rather than imported so that reading a run's results
# does not depend on pytest internals.
OK = 0
TESTS_FAILED = 1
INTERRUPTED = 2
NO_TESTS_COLLECTED = 5

# The order pytest lists counts in on its last line (`_pytest.terminal.KNOWN_TYPES`), limited
# to the keys that make sense for a finished run; unknown keys follow in the order given.
SUMMARY_ORDER: tuple[str, ...] = (
    "failed",
    "passed",
    "skipped",
    "deselected",
    "xfailed",
    "xpassed",
    "warnings",
    "error",
    "subtests passed",
    "subtests failed",
    "subtests skipped",
)

# The outcomes a `CaseResult` can have, in summary order.
OUTCOME_ORDER: tuple[Outcome, ...] = ("failed", "passed", "skipped", "xfailed", "xpassed", "error")


def count(cases: Iterable[CaseResult]) -> dict[str, int]:
    """Count cases by outcome: non-zero counts only, keyed in pytest's summary order."""
    tally = Counter(case.outcome for case in cases)
    return {outcome: tally[outcome] for outcome in OUTCOME_ORDER if tally[outcome]}


def pytest_counts(cases: Iterable[CaseResult]) -> dict[str, int]:
    """What plain pytest's final line counts: each case's own tally of reports (a teardown
    error beside a pass, subtests, reruns), or its one outcome when it has none."""
    tally: Counter[str] = Counter()
    for case in cases:
        tally.update(case.tally or {case.outcome: 1})
    known = [key for key in SUMMARY_ORDER if tally[key]]
    return {key: tally[key] for key in [*known, *(k for k in tally if k not in SUMMARY_ORDER)]}


def exit_code(
    cases: Iterable[CaseResult], *, interrupted: bool = False, collection_errors: int = 0
) -> int:
    """The exit code plain pytest would end this run with.

    2 (INTERRUPTED) when the run was interrupted or collection failed (pytest stops before
    running anything then); otherwise 1 (TESTS_FAILED) when any case failed or errored,
    5 (NO_TESTS_COLLECTED) when there are no cases at all, and 0 (OK) otherwise; skipped,
    xfailed and xpassed cases do not fail a run.
    """
    if interrupted or collection_errors:
        return INTERRUPTED
    outcomes = {case.outcome for case in cases}
    if outcomes & {"failed", "error"}:
        return TESTS_FAILED
    if not outcomes:
        return NO_TESTS_COLLECTED
    return OK


def pluralize(n: int, noun: str) -> str:
    """`n` and `noun` as pytest writes them: only "error", "warnings" and "test" take a plural."""
    if noun not in ("error", "warnings", "test"):
        return f"{n} {noun}"
    # pytest's stats key is "warnings"; it is singularised first, then pluralised by count.
    noun = noun.replace("warnings", "warning")
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def format_duration(seconds: float) -> str:
    """Seconds as pytest's final line shows them: "1.23s", or "75.00s (0:01:15)" from a minute."""
    if seconds < 60:
        return f"{seconds:.2f}s"
    return f"{seconds:.2f}s ({datetime.timedelta(seconds=int(seconds))})"


def summary_parts(counts: Mapping[str, int]) -> list[tuple[str, str]]:
    """`(key, text)` for each non-zero count in pytest's order, e.g. `("error", "2 errors")`."""
    known = [key for key in SUMMARY_ORDER if counts.get(key)]
    unknown = [key for key, n in counts.items() if n and key not in SUMMARY_ORDER]
    return [(key, pluralize(counts[key], key)) for key in known + unknown]


def summary_line(counts: Mapping[str, int], seconds: float) -> str:
    """pytest's final line without its '=' rule, e.g. "1 failed, 3 passed, 2 errors in 0.12s"."""
    parts = [text for _, text in summary_parts(counts)] or ["no tests ran"]
    return f"{', '.join(parts)} in {format_duration(seconds)}"
