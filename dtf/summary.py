"""The end of a finished run on the terminal, laid out like the end of a plain pytest run.

Sections come in pytest's order: ERRORS, FAILURES, "slowest N durations", "short test summary
info", then the final counts line between '=' rules, coloured as pytest colours it.  Every
piece of test text goes through `rich.text.Text`, never console markup, so node ids such as
"test_x[1]" print as they are; a console that is not a terminal gets plain text.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from rich.cells import cell_len
from rich.console import Console
from rich.text import Text

from dtf.outcomes import count, format_duration, summary_parts
from events.catalogue import CaseResult

# pytest hides shorter durations unless asked for more verbosity (`--durations-min`).
DURATIONS_MIN = 0.005

# pytest's `_color_for_type`; anything else is yellow.
_COLOR_FOR_TYPE = {"failed": "red", "error": "red", "warnings": "yellow", "passed": "green"}
_DEFAULT_COLOR = "yellow"

# The word and colour that start a short-summary line, per outcome.
_SHORT_WORDS = {
    "skipped": ("SKIPPED", "yellow"),
    "xfailed": ("XFAIL", "yellow"),
    "xpassed": ("XPASS", "yellow"),
    "error": ("ERROR", "red"),
    "failed": ("FAILED", "red"),
}
# pytest's report characters: "fE" by default, "sxXEf" with -ra (which `verbose` stands for).
_SHORT_ORDER = ("failed", "error")
_SHORT_ORDER_VERBOSE = ("skipped", "xfailed", "xpassed", "error", "failed")


def render_summary(
    console: Console,
    cases: Iterable[CaseResult],
    *,
    seconds: float,
    slowest: int = 5,
    verbose: bool = False,
) -> None:
    """Print the end of the run: failures and errors, slowest cases, short summary, counts.

    `slowest` is pytest's `--durations`: how many cases to list, 0 for all, negative for none.
    `verbose` lists fast durations too, adds SKIPPED/XFAIL/XPASS lines to the short summary
    and prints failure messages there in full instead of trimmed to the console's width.
    """
    cases = list(cases)
    _render_errors(console, [c for c in cases if c.outcome == "error"])
    _render_failures(console, [c for c in cases if c.outcome == "failed"])
    if slowest >= 0:
        _render_durations(console, cases, slowest, verbose=verbose)
    _render_short_summary(console, cases, verbose=verbose)
    flaky = [c for c in cases if c.outcome == "passed" and c.reruns]
    for case in flaky:  # passed only on a rerun: a result worth knowing, not a failure
        console.print(
            f"FLAKY {case.nodeid} - passed after {case.reruns} failed run(s)",
            style="yellow",
            markup=False,
            highlight=False,
        )
    _render_final_line(console, count(cases), seconds)


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


def headline(nodeid: str) -> str:
    """The title pytest puts over a failure: "TestX.test_y[1]", or the path for a module."""
    path, sep, rest = nodeid.partition("::")
    if not sep:
        return path
    name_part, bracket, params = rest.partition("[")
    return name_part.replace("::", ".") + bracket + params


def _render_failures(console: Console, failed: list[CaseResult]) -> None:
    if not failed:
        return
    console.rule(Text("FAILURES"), characters="=", style="none")
    for case in failed:
        console.rule(Text(headline(case.nodeid), style="bold red"), characters="_", style="red")
        _print_report(console, case)


def _render_errors(console: Console, errors: list[CaseResult]) -> None:
    if not errors:
        return
    console.rule(Text("ERRORS"), characters="=", style="none")
    for case in errors:
        # Whether it broke in setup, teardown or on the worker is not recorded, so unlike
        # pytest ("ERROR at setup of ...") the phase is not named.
        if "::" in case.nodeid:
            title = f"ERROR {headline(case.nodeid)}"
        else:
            title = f"ERROR collecting {case.nodeid}"
        console.rule(Text(title, style="bold red"), characters="_", style="red")
        _print_report(console, case)


def _print_report(console: Console, case: CaseResult) -> None:
    report = case.longrepr or case.message
    if report:
        # A worker running pytest with colour sends escape codes; they become styles here, so
        # a file gets plain text and a terminal gets the colours back.  soft_wrap keeps
        # traceback lines whole instead of wrapping them at the console width.
        console.print(Text.from_ansi(report.rstrip("\n")), soft_wrap=True)


def _render_durations(
    console: Console, cases: list[CaseResult], slowest: int, *, verbose: bool
) -> None:
    if not cases:
        return
    ranked = sorted(cases, key=lambda c: c.duration, reverse=True)
    if slowest:
        console.rule(Text(f"slowest {slowest} durations"), characters="=", style="none")
        ranked = ranked[:slowest]
    else:
        console.rule(Text("slowest durations"), characters="=", style="none")
    minimum = 0.0 if verbose else DURATIONS_MIN
    for i, case in enumerate(ranked):
        if case.duration < minimum:
            console.print()
            console.print(Text(f"({len(ranked) - i} durations < {minimum:g}s hidden.)"))
            break
        # A case's duration covers setup, call and teardown; pytest's column says "call".
        console.print(Text(f"{case.duration:02.2f}s {'call':<8} {case.nodeid}"), soft_wrap=True)


def _render_short_summary(console: Console, cases: list[CaseResult], *, verbose: bool) -> None:
    lines: list[Text] = []
    for outcome in _SHORT_ORDER_VERBOSE if verbose else _SHORT_ORDER:
        word, color = _SHORT_WORDS[outcome]
        for case in cases:
            if case.outcome == outcome:
                lines.append(_short_line(word, color, case, console.width, verbose=verbose))
    if not lines:
        return
    console.rule(Text("short test summary info", style="bold cyan"), characters="=", style="cyan")
    for line in lines:
        console.print(line, soft_wrap=True)


def _short_line(word: str, color: str, case: CaseResult, width: int, *, verbose: bool) -> Text:
    """`WORD nodeid - message`, the message cut to one line that fits `width` unless verbose."""
    line = Text(word, style=color)
    line.append(" ")
    path, sep, rest = case.nodeid.partition("::")
    line.append(path + sep)
    line.append(rest, style="bold")
    message = Text.from_ansi(case.message).plain
    if not message:
        return line
    if verbose:
        line.append(f" - {message}")
        return line
    message = message.split("\n", 1)[0]
    available = width - cell_len(line.plain) - len(" - ")
    if available < len("..."):
        return line
    if cell_len(message) > available:
        message = message[: available - len("...")]
        while cell_len(message) > available - len("..."):
            message = message[:-1]
        message += "..."
    line.append(f" - {message}")
    return line


def _render_final_line(console: Console, counts: Mapping[str, int], seconds: float) -> None:
    color = main_color(counts)
    title = Text(style=color)
    parts = summary_parts(counts)
    for i, (key, text) in enumerate(parts):
        if i:
            title.append(", ")
        part_color = _COLOR_FOR_TYPE.get(key, _DEFAULT_COLOR)
        title.append(text, style=f"bold {part_color}" if part_color == color else part_color)
    if not parts:
        title.append("no tests ran", style=_DEFAULT_COLOR)
    title.append(f" in {format_duration(seconds)}")
    console.rule(title, characters="=", style=color)
