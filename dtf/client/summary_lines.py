"""The lines of pytest's "short test summary info", and what a case's message says.

pytest writes one group of lines per character of its `-r` option, in the order given
(`TerminalReporter.short_test_summary`): "f" FAILED, "E" ERROR, "s" SKIPPED (folded by
default: `SKIPPED [2] path:line: reason`), "x" XFAIL, "X" XPASS, "p" PASSED.  A FAILED or
ERROR line ends with the crash message, cut to the terminal width unless pytest runs on CI
or with -vv (`_get_line_with_reprcrash_message`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rich.cells import cell_len
from rich.text import Text

from dtf.client.pytest_options import SummaryOptions
from events.catalogue import CaseResult

# A worker names the phase an item errored in: "error in setup: RuntimeError: ..."
# (dtf.runner.child.item_outcome.combine).
_ERROR_PHASE = re.compile(r"^error in (setup|call|teardown): ")
# `@pytest.mark.xfail(run=False)` is decided before setup runs, so it is reported at setup.
_NOT_RUN = "[NOTRUN] "
_SKIPPED_PREFIX = "Skipped: "  # pytest's skip reasons carry it; workers send them without

_WORDS = {
    "failed": ("FAILED", "red"),
    "error": ("ERROR", "red"),
    "passed": ("PASSED", "green"),
    "skipped": ("SKIPPED", "yellow"),
    "xfailed": ("XFAIL", "yellow"),
    "xpassed": ("XPASS", "yellow"),
}


def error_phase(case: CaseResult) -> str | None:
    """The phase ("setup", "call", "teardown") an errored item broke in, when known."""
    match = _ERROR_PHASE.match(case.message)
    return match.group(1) if match else None


def crash_message(case: CaseResult) -> str:
    """The message pytest would show for a case: without dtf's "error in PHASE: " prefix."""
    return _ERROR_PHASE.sub("", case.message, count=1)


def is_collector(case: CaseResult) -> bool:
    """A result of a module or package (collection error, module skip), not of a test item."""
    return "::" not in case.nodeid


def short_summary_lines(
    cases: Sequence[CaseResult], options: SummaryOptions, width: int
) -> list[Text]:
    """Every line of the short test summary, in pytest's order, for a console `width` wide."""
    lines: list[Text] = []
    for char in options.report_categories:
        if char == "f":
            lines += _crash_lines(cases, "failed", options, width)
        elif char == "E":
            lines += _crash_lines(cases, "error", options, width)
        elif char == "p":
            lines += _crash_lines(cases, "passed", options, width)
        elif char == "s":
            lines += _skip_lines(cases, options)
        elif char in "xX":
            lines += _xfail_lines(cases, "xfailed" if char == "x" else "xpassed", options)
    return lines


def _crash_lines(
    cases: Sequence[CaseResult], outcome: str, options: SummaryOptions, width: int
) -> list[Text]:
    lines = []
    for case in cases:
        if case.outcome != outcome:
            continue
        line = _start(outcome, _node(case.nodeid, options))
        # A passed report has no crash for pytest to quote.
        message = "" if outcome == "passed" else Text.from_ansi(crash_message(case)).plain
        if message:
            line.append(_trimmed(message, width - cell_len(line.plain), options))
        lines.append(line)
    return lines


def _trimmed(message: str, available: int, options: SummaryOptions) -> str:
    """ " - message", cut with "..." to `available` columns (pytest's `_format_trimmed`)."""
    if options.untrimmed_messages:
        return f" - {message}"
    message = message.split("\n", 1)[0]
    if len(" - ...") > available:
        return ""
    if len(" - ") + cell_len(message) > available:
        available -= len("...")
        message = message[:available]
        while len(" - ") + cell_len(message) > available:
            message = message[:-1]
        message += "..."
    return f" - {message}"


def _skip_lines(cases: Sequence[CaseResult], options: SummaryOptions) -> list[Text]:
    skipped = [case for case in cases if case.outcome == "skipped"]
    if not options.fold_skipped:
        return [
            _start("skipped", _node(case.nodeid, options)) + f" - {_SKIPPED_PREFIX}{case.message}"
            for case in skipped
        ]
    folded: dict[tuple[str, str], int] = {}
    for case in skipped:
        key = (_skip_location(case, options), case.message)
        folded[key] = folded.get(key, 0) + 1
    return [
        _start("skipped", Text(f"[{n}] {where}: {reason}")) for (where, reason), n in folded.items()
    ]


def _skip_location(case: CaseResult, options: SummaryOptions) -> str:
    """`path:line` of the skip as pytest folds skips, or the file alone when not sent.

    pytest folds skips by the place `pytest.skip()` ran (or the test's line for a marker);
    workers that send it do so in `skip_location` ("path:line", relative to the rootdir).
    Without it a skip is placed at its test's file: one line per file and reason.
    """
    location = getattr(case, "skip_location", "") or case.nodeid.partition("::")[0]
    path, colon, line = location.rpartition(":")
    if not colon or not line.isdigit():
        return options.relative_nodeid(location)
    return f"{options.relative_nodeid(path)}:{line}"


def _xfail_lines(cases: Sequence[CaseResult], outcome: str, options: SummaryOptions) -> list[Text]:
    lines = []
    for case in cases:
        if case.outcome != outcome:
            continue
        node = _node(case.nodeid, options)
        if outcome == "xfailed" and case.message.startswith(_NOT_RUN):
            node = Text("at setup of ") + node
        line = _start(outcome, node)
        # A worker sends the outcome's name for a reason-less xfail; pytest prints no reason.
        if case.message and case.message != outcome:
            line.append(f" - {case.message}")
        lines.append(line)
    return lines


def _start(outcome: str, node: Text) -> Text:
    word, color = _WORDS[outcome]
    line = Text(word, style=color)
    line.append(" ")
    line.append_text(node)
    return line


def _node(nodeid: str, options: SummaryOptions) -> Text:
    """A node id as pytest prints it: the part after the file in bold."""
    path, sep, rest = options.relative_nodeid(nodeid).partition("::")
    node = Text(path + sep)
    node.append(rest, style="bold")
    return node
