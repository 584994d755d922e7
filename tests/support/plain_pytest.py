"""What PLAIN pytest says about a suite, read from its own output, to check dtf against.

Nothing here uses dtf's classifier: a subprocess runs `python -m pytest -v -rA` and this
module reads pytest's verbose per-phase words ("PASSED", "ERROR", "XFAIL", ...) and its final
summary line.

How dtf's one-outcome-per-item maps to pytest's counts: pytest reports an item once per
phase that has something to say, so an item whose call passed (or failed) and whose teardown
errored prints two words ("PASSED" then "ERROR") and is counted twice ("1 passed, 1 error").
dtf reports one outcome per item and calls that item an "error": `fold` folds the words
with that same rule (any "ERROR" makes the item "error", otherwise its word; a SUBFAILED line
makes it "failed"), and `PlainPytest.double_counted` lists the items pytest counted twice.
pytest's own counts are compared with the tallies dtf's results carry (`outcomes.pytest_counts`).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

WORDS = {
    "PASSED": "passed",
    "FAILED": "failed",
    "ERROR": "error",
    "SKIPPED": "skipped",
    "XFAIL": "xfailed",
    "XPASS": "xpassed",
}
# A verbose progress line: "<nodeid> <WORD> [(reason)] [ NN%]".  The node id is matched
# lazily so that a word inside a parametrize id does not end it early: what follows the word
# must be only the optional reason and the progress.
_PROGRESS = re.compile(
    r"^(?P<nodeid>\S.*?) (?P<word>" + "|".join(WORDS) + r")(?: \(.*\))?\s+\[\s*\d+%\]$"
)
# A failed subtest in the short summary (-rA): "SUBFAILED(i=2) <nodeid> - <message>".  dtf
# reports the item of a failed subtest as failed, even when pytest reports it as passed.
_SUBFAILED = re.compile(r"^SUBFAILED\S*(?: \(.*?\))? (?P<nodeid>\S+::\S+)(?: - .*)?$")
_SUMMARY = re.compile(r"^=+ (?P<body>.*\d+ \w+.* in [\d.]+s.*?) =+$")
_COUNT = re.compile(r"(\d+) (subtests \w+|\w+)")
# pytest's summary words, singular, named as dtf names outcomes.
_COUNT_NAMES = {"errors": "error", "warnings": "warning"}


@dataclass(frozen=True)
class PlainPytest:
    """One plain pytest run: per-item outcomes, pytest's own counts, and its output."""

    outcomes: dict[str, str]
    double_counted: dict[str, str]  # node id -> the outcome pytest counted besides "error"
    counts: dict[str, int]
    output: str


def run_plain_pytest(
    root: Path,
    args: Sequence[str],
    *,
    python: str = sys.executable,
    options: Sequence[str] = ("-p", "no:cacheprovider"),
) -> PlainPytest:
    """Run `PYTHON -m pytest ARGS OPTIONS -v -rA` in `root` and read its verbose output."""
    env = {**os.environ, "COLUMNS": "400", "PY_COLORS": "0"}  # no wrapped or coloured lines
    proc = subprocess.run(
        [python, "-m", "pytest", *args, *options, "-v", "-rA"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    words: dict[str, list[str]] = {}
    subfailed: set[str] = set()
    summary = ""
    for line in proc.stdout.splitlines():
        if m := _PROGRESS.match(line):
            words.setdefault(m["nodeid"], []).append(WORDS[m["word"]])
        elif m := _SUBFAILED.match(line):
            subfailed.add(m["nodeid"])
        elif m := _SUMMARY.match(line):
            summary = m["body"]
    if not summary:
        raise AssertionError(f"no summary line in pytest output:\n{proc.stdout}\n{proc.stderr}")
    for nodeid in subfailed:
        words[nodeid] = [w if w != "passed" else "failed" for w in words[nodeid]]
    return PlainPytest(
        outcomes={nodeid: fold(found) for nodeid, found in words.items()},
        double_counted={n: w[0] for n, w in words.items() if len(w) > 1 and w[0] != "error"},
        counts=parse_counts(summary),
        output=proc.stdout,
    )


def fold(words: Sequence[str]) -> str:
    """One outcome from an item's per-phase words: any error wins, else the last word."""
    return "error" if "error" in words else words[-1]


def parse_counts(summary: str) -> dict[str, int]:
    """Counts from pytest's final line: "3 failed, 10 passed, 2 errors in 0.5s"."""
    body = summary.rsplit(" in ", 1)[0]
    return {_COUNT_NAMES.get(name, name): int(n) for n, name in _COUNT.findall(body)}


# A section rule ("=== ERRORS ===") and a test's title ("___ test_x ___"); a traceback's own
# "_ _ _ _" separators have single underscores and are not titles.
_RULE = re.compile(r"^=+ (?P<title>.*) =+$")
_TITLE = re.compile(r"^__+ (?P<title>.*) __+$")
_TIMING = re.compile(r" in \d+\.\d\ds( \(\d+:\d\d:\d\d\))?$")


@dataclass(frozen=True)
class SummarySections:
    """The end of a pytest-like run: section rules, test titles, short summary, final line."""

    rules: list[str]  # whole '=' lines, padding included, before the final line
    titles: list[str]  # the '_' titles without their padding, e.g. "ERROR at setup of test_x"
    short: list[str]  # the lines of "short test summary info"
    final: str  # the final line's text without its '=' padding and duration


def summary_sections(output: str) -> SummarySections:
    """Read the summary sections of pytest's (or dtf's) output; the session header is skipped."""
    rules: list[str] = []
    titles: list[str] = []
    short: list[str] = []
    section = ""
    for line in output.splitlines():
        if m := _RULE.match(line):
            section = m["title"]
            if section != "test session starts":
                rules.append(line)
        elif section and (m := _TITLE.match(line)):
            titles.append(m["title"])
        elif section == "short test summary info":
            short.append(line)
    if not rules:
        raise AssertionError(f"no summary in output:\n{output}")
    final = _TIMING.sub("", rules.pop().strip("= "))
    return SummarySections(rules, titles, short, final)
