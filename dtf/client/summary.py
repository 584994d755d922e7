"""The end of a finished run on the terminal, laid out like the end of a plain pytest run.

Sections come in pytest's order (`TerminalReporter.pytest_terminal_summary`): ERRORS,
FAILURES, PASSES (-rP), XPASSES (-rX), "slowest N durations" (only with --durations),
"short test summary info", then the final counts line between '=' rules, coloured as pytest
colours it.  Which of them print follows pytest's own options as pytest would read them
(`dtf.client.pytest_options`).  Every piece of test text goes through `rich.text.Text`, never
console markup, so node ids such as "test_x[1]" print as they are; a console that is not a
terminal gets plain text.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from rich.console import Console
from rich.text import Text

from dtf.client import pytest_options
from dtf.client.pytest_options import SummaryOptions
from dtf.client.summary_lines import error_phase, is_collector, short_summary_lines
from dtf.core.outcomes import count, format_duration, pytest_counts, summary_parts
from events.catalogue import CaseResult

# pytest's `_color_for_type`; anything else is yellow.
_COLOR_FOR_TYPE = {"failed": "red", "error": "red", "warnings": "yellow", "passed": "green"}
_DEFAULT_COLOR = "yellow"


def render_summary(
    console: Console,
    cases: Iterable[CaseResult],
    *,
    seconds: float,
    slowest: int | None = None,
    verbose: bool = False,
    pytest_args: Sequence[str] = (),
    root: Path | None = None,
    interrupted: str | None = None,
) -> None:
    """Print the end of the run: failures and errors, slowest cases, short summary, counts.

    `pytest_args` are the run's paths and pytest arguments and `root` the directory pytest
    runs in (default: the current one); with the project's `addopts` and `$PYTEST_ADDOPTS`
    they decide the sections as they would for pytest.  `slowest` is dtf's `--durations`:
    how many cases to list, 0 for all, negative for none; None leaves it to pytest's
    `--durations` (none when not given).  `verbose` is dtf's `-v`: as if `-ra` came last.
    `interrupted` says why the run stopped early (`collection_interrupted`); pytest prints
    it between '!' rules before the final line.
    """
    options = pytest_options.read(root or Path.cwd(), [*pytest_args, *(["-ra"] if verbose else [])])
    durations = options.durations if slowest is None else slowest
    cases = list(cases)
    if not options.no_summary and options.tbstyle != "no":
        _render_errors(console, [c for c in cases if c.outcome == "error"])
        _render_failures(console, [c for c in cases if c.outcome == "failed"])
        # Captured output of passing tests is not sent by workers: the titles stand alone.
        if "P" in options.report_categories and count(cases).get("passed"):
            rule(console, Text("PASSES"))
        if "X" in options.report_categories and count(cases).get("xpassed"):
            rule(console, Text("XPASSES"))
    if durations is not None and durations >= 0:
        _render_durations(console, cases, durations, options)
    if not options.no_summary:
        _render_short_summary(console, cases, options)
    flaky = [c for c in cases if c.outcome == "passed" and c.reruns]
    for case in flaky:  # passed only on a rerun: a result worth knowing, not a failure
        console.print(
            f"FLAKY {case.nodeid} - passed after {case.reruns} failed run(s)",
            style="yellow",
            markup=False,
            highlight=False,
        )
    if interrupted:
        rule(console, Text(f"Interrupted: {interrupted}"), "!")
    _render_final_line(console, pytest_counts(cases), seconds, options.verbosity)


def collection_interrupted(errors: int) -> str:
    """Why pytest stops after collection errors, in its words: "2 errors during collection"."""
    return f"{errors} error{'s' if errors != 1 else ''} during collection"


def rule(console: Console, title: Text, character: str = "=", style: str = "none") -> None:
    """`=== title ===` the width of the console, split as pytest's `TerminalWriter.sep` does.

    pytest puts the same number of characters on both sides and one more on the right when
    it fits, and lets a title longer than the line overflow it rather than cut it.
    """
    width = console.width - (1 if sys.platform == "win32" else 0)
    fill = character * max((width - len(title.plain) - 2) // (2 * len(character)), 1)
    line = Text(fill, style=style)
    line.append(" ")
    line.append_text(title)
    line.append(" ")
    line.append(fill, style=style)
    if len(line.plain) + len(character.rstrip()) <= width:
        line.append(character.rstrip(), style=style)
    console.print(line, soft_wrap=True)


def main_color(counts: Mapping[str, int]) -> str:
    """The colour of pytest's final line: red, else yellow for xpasses, green, else yellow."""
    present = {key for key, n in counts.items() if n}
    if present & {"failed", "error"}:
        return "red"
    if present - {"passed", "skipped", "deselected", "xfailed"}:
        # xpassed, warnings and kinds pytest does not know all call for a look.
        return "yellow"
    if "passed" in present:
        return "green"
    return "yellow"


def counts_text(counts: Mapping[str, int]) -> Text:
    """ "1 failed, 3 passed, 1 error", each count coloured as on pytest's final line."""
    color = main_color(counts)
    text = Text(style=color)
    for i, (key, part) in enumerate(summary_parts(counts)):
        if i:
            text.append(", ")
        part_color = _COLOR_FOR_TYPE.get(key, _DEFAULT_COLOR)
        text.append(part, style=f"bold {part_color}" if part_color == color else part_color)
    return text


def headline(nodeid: str) -> str:
    """The title pytest puts over a failure: "TestX.test_y[1]", or the path for a module."""
    path, sep, rest = nodeid.partition("::")
    if not sep:
        return path
    name_part, bracket, params = rest.partition("[")
    return name_part.replace("::", ".") + bracket + params


def error_title(case: CaseResult) -> str:
    """pytest's title over an error: "ERROR at setup of test_x", "ERROR collecting x.py"."""
    phase = error_phase(case)
    if phase is not None:
        return f"ERROR at {phase} of {headline(case.nodeid)}"
    if is_collector(case):
        return f"ERROR collecting {case.nodeid}"
    # dtf's own errors (a worker lost, a timeout) have no pytest phase to name.
    return f"ERROR {headline(case.nodeid)}"


def _render_failures(console: Console, failed: list[CaseResult]) -> None:
    if not failed:
        return
    rule(console, Text("FAILURES"))
    for case in failed:
        rule(console, Text(headline(case.nodeid), style="bold red"), "_", "red")
        _print_report(console, case)


def _render_errors(console: Console, errors: list[CaseResult]) -> None:
    if not errors:
        return
    rule(console, Text("ERRORS"))
    for case in errors:
        rule(console, Text(error_title(case), style="bold red"), "_", "red")
        _print_report(console, case)


def _print_report(console: Console, case: CaseResult) -> None:
    report = case.longrepr or case.message
    if report:
        # A worker running pytest with colour sends escape codes; they become styles here, so
        # a file gets plain text and a terminal gets the colours back.  soft_wrap keeps
        # traceback lines whole instead of wrapping them at the console width.
        console.print(Text.from_ansi(report.rstrip("\n")), soft_wrap=True)


def _render_durations(
    console: Console, cases: list[CaseResult], slowest: int, options: SummaryOptions
) -> None:
    # pytest lists test reports only: collection results (errors, module skips) have no time.
    ranked = sorted(
        (c for c in cases if not is_collector(c)), key=lambda c: c.duration, reverse=True
    )
    if not ranked:
        return
    if slowest:
        rule(console, Text(f"slowest {slowest} durations"))
        ranked = ranked[:slowest]
    else:
        rule(console, Text("slowest durations"))
    minimum = options.shortest_duration
    for i, case in enumerate(ranked):
        if case.duration < minimum:
            hint = "  Use -vv to show these durations." if options.durations_min is None else ""
            console.print()
            console.print(Text(f"({len(ranked) - i} durations < {minimum:g}s hidden.{hint})"))
            break
        # A case's duration covers setup, call and teardown; pytest's column says "call".
        console.print(Text(f"{case.duration:02.2f}s {'call':<8} {case.nodeid}"), soft_wrap=True)


def _render_short_summary(
    console: Console, cases: list[CaseResult], options: SummaryOptions
) -> None:
    lines = short_summary_lines(cases, options, console.width)
    if not lines:
        return
    rule(console, Text("short test summary info", style="bold cyan"), style="cyan")
    for line in lines:
        console.print(line, soft_wrap=True)


def _render_final_line(
    console: Console, counts: Mapping[str, int], seconds: float, verbosity: int
) -> None:
    """pytest's last line; without its rules under -q, and not at all under -qq."""
    if verbosity < -1:
        return
    color = main_color(counts)
    title = counts_text(counts) if counts else Text("no tests ran", style=_DEFAULT_COLOR)
    title.append(f" in {format_duration(seconds)}")
    if verbosity < 0:
        console.print(title, soft_wrap=True)
    else:
        rule(console, title, style=color)
