"""Terminal output of `dtf regressions`, `trends`, `errors`, `best` and `flaky` (the text
formats).

Every cell is a `rich.text.Text`, never markup: nodeids (`test_x[a-b]`) and error messages
hold square brackets that rich would otherwise read as styles.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from projections.analytics.changepoint import ChangePoint
from projections.queries.best import Best
from projections.queries.error_patterns import Pattern
from projections.queries.flaky import FlakyTest
from projections.queries.refs import Selection
from projections.queries.regressions import MetricChange
from projections.reports import display

VERDICT_STYLE = {"regression": "bold red", "improvement": "green", "unchanged": ""}
# Wide enough that a table written to a file or pipe keeps one row per line.
PIPE_WIDTH = 240


def print_regressions(
    console: Console,
    baseline: Selection,
    candidate: Selection,
    changes: Sequence[MetricChange],
    alpha: float,
    threshold: float,
) -> None:
    for side, s in (("baseline", baseline), ("candidate", candidate)):
        commits = ", ".join(display.short_commit(c) for c in s.commits[:3]) or "no commit"
        _line(console, f"{side}: {s.ref} ({s.kind}; {len(s.run_ids)} runs; {commits})")
    table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for column in ("metric", "n", "baseline", "candidate", "change", "95% CI", "p", "q"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    table.add_column("verdict")
    for change in changes:
        c = change.comparison
        table.add_row(
            *(
                Text(cell)
                for cell in (
                    change.metric,
                    f"{c.n_baseline}/{c.n_candidate}",
                    display.num(c.baseline_median, change.unit),
                    display.num(c.candidate_median, change.unit),
                    display.pct(c.pct_change),
                    display.pct_interval(c.pct_low, c.pct_high),
                    display.p_value(c.p_value),
                    display.p_value(change.q_value),
                )
            ),
            Text(change.verdict, style=VERDICT_STYLE[change.verdict]),
        )
    _print(console, table)
    counts = {v: sum(c.verdict == v for c in changes) for v in VERDICT_STYLE}
    _line(
        console,
        f"{counts['regression']} regressions, {counts['improvement']} improvements, "
        f"{counts['unchanged']} unchanged (FDR {alpha:g}, threshold {threshold:g}%)",
    )


def print_trends(
    console: Console,
    found: Mapping[str, Sequence[tuple[ChangePoint, str, str]]],
    units: Mapping[str, str],
) -> None:
    """Change points per series as `(change, old_commit, new_commit)`: the change came with
    a commit after old, up to and including new. `units` may be empty and commits empty
    strings (series from a file)."""
    changed = {name: cps for name, cps in found.items() if cps}
    if not found:
        _line(console, "no series to analyse")
        return
    if changed:
        with_commits = any(old or new for cps in changed.values() for _, old, new in cps)
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
        columns = ["series", "index", "may start", *(["commits"] if with_commits else [])]
        for column in [*columns, "before", "after", "change", "95% CI", "p"]:
            left = column in ("series", "commits")
            table.add_column(column, justify="left" if left else "right")
        for name, cps in changed.items():
            unit = units.get(name, "")
            for change, old, new in cps:
                cells = [name, str(change.index), f"{change.index_low}-{change.index_high}"]
                if with_commits:
                    cells.append(display.commit_range(old, new))
                cells += [
                    display.num(change.before_mean, unit),
                    display.num(change.after_mean, unit),
                    display.pct(change.pct_change),
                    display.pct_interval(change.pct_low, change.pct_high),
                    display.p_value(change.p_value),
                ]
                table.add_row(*(Text(cell) for cell in cells))
        _print(console, table)
    _line(console, f"{len(changed)} of {len(found)} series changed")


def print_errors(console: Console, patterns: Sequence[Pattern], total: int, window: str) -> None:
    _line(console, f"{total} errors in the last {window}, {len(patterns)} recurring patterns")
    for rank, p in enumerate(patterns, start=1):
        _line(console, "")
        _line(
            console,
            f"{rank}. {p.count}x  first {display.when(p.first_seen)}  "
            f"last {display.when(p.last_seen)}  ({len(p.variants)} fingerprints)",
        )
        _line(console, f"   pattern:  {p.fingerprint}")
        _line(console, f"   example:  {_first_line(p.example)}")
        _line(console, f"   category: {display.tally(p.categories)}")
        _line(console, f"   workers:  {display.tally(p.workers)}")
        _line(console, f"   hardware: {display.tally(p.hardware)}")


def print_best(console: Console, found: Best) -> None:
    """One table per ranking, best first, then whether it is decided and why not."""
    goal = "lower" if found.direction == "lower" else "higher"
    _line(console, f"{found.metric} ({goal} is better), configurations by {', '.join(found.by)}")
    for group in found.groups:
        ranking = group.ranking
        if group.fixed:
            _line(console, "")
            _line(console, ", ".join(f"{d}={v}" for d, v in group.fixed))
        table = Table(box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
        for column in ("#", "configuration", "n", "median", "margin", "95% CI", "p", "verdict"):
            table.add_column(
                column, justify="left" if column in ("configuration", "verdict") else "right"
            )
        for place, entry in enumerate(ranking.entries, 1):
            table.add_row(
                *(
                    Text(cell)
                    for cell in (
                        str(place),
                        entry.name,
                        str(entry.summary.count),
                        display.num(entry.summary.median, found.unit),
                        "" if entry.verdict is None else display.pct(entry.margin_pct),
                        ""
                        if entry.verdict is None
                        else display.pct_interval(entry.margin_low, entry.margin_high),
                        "" if entry.p_value is None else display.p_value(entry.p_value),
                        entry.verdict or "",
                    )
                )
            )
        _print(console, table)
        best = ranking.best
        if ranking.decided:
            runner_up = ranking.entries[1]
            _line(
                console,
                f"best: {best.name}, {display.pct(best.margin_pct, signed=False)} better than "
                f"{runner_up.name} (p {display.p_value(best.p_value)})",
            )
        else:
            _line(console, f"too thin to decide: {ranking.reason}")


def print_flaky(console: Console, shown: Sequence[FlakyTest], total: int, tests: int) -> None:
    """The flakiest tests, then how to keep them from failing builds."""
    _line(console, f"{total} of {tests} tests flaky" + (f", {len(shown)} shown" if shown else ""))
    if not shown:
        return
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for name in ("test", "rate", "flaky runs", "after rerun", "failed, commit passed"):
        table.add_column(name, justify="left" if name == "test" else "right")
    table.add_column("last flaky")
    table.add_column("last outcome")
    for t in shown:
        cells = [
            t.nodeid,
            f"{100 * t.rate:.0f}%",
            f"{t.flaky_runs}/{t.runs}",
            str(t.passed_after_rerun),
            str(t.failed_on_passing_commit),
            display.when(t.last_flaky_at),
            t.last_outcome or "-",
        ]
        table.add_row(*(Text(cell) for cell in cells))
    _print(console, table)
    _line(
        console,
        "keep them from failing builds while they run: [tool.dtf] quarantine = "
        f'["{shown[0].nodeid}", ...]',
    )


def _first_line(text: str, limit: int = 200) -> str:
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _line(console: Console, text: str) -> None:
    console.print(Text(text), soft_wrap=True)


def _print(console: Console, table: Table) -> None:
    if not console.is_terminal:
        # rich caps a print at the console's width (80 off a terminal); a wider console on the
        # same file keeps rows whole in logs and pipes.
        console = Console(file=console.file, width=PIPE_WIDTH, highlight=False, color_system=None)
    console.print(table)
