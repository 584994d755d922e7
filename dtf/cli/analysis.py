"""The analysis commands of `dtf`: `replay` builds the DuckDB read model from the event
stream; `report`, `regressions`, `trends`, `errors`, `best` and `flaky` read only that file (no
server needed).

Their arguments are `dtf.cli.analysis_args`; `dtf.cli.main` calls `run` for any of its
`COMMANDS`. Heavy imports (numpy, scipy, duckdb) happen inside
the handlers so that `dtf run` does not pay for them.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

from rich.console import Console

from dtf.errors import ConfigError

__all__ = ["parse_age", "run"]


ConnectUrl = Callable[[argparse.Namespace], list[str]]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def run(args: argparse.Namespace, console: Console, connect_url: ConnectUrl) -> int:
    """Run analysis command `args.cmd`; returns the exit code."""
    if args.cmd == "replay":
        return _replay(args, console, connect_url)
    handlers = {
        "report": _report,
        "regressions": _regressions,
        "trends": _trends,
        "errors": _errors,
        "best": _best,
        "flaky": _flaky,
        "badge": _badge,
    }
    return handlers[args.cmd](args, console)


def parse_age(text: str, option: str) -> float:
    """Seconds in an age such as `90s`, `15m`, `6h`, `7d`, `2w`; ConfigError otherwise."""
    match = _DURATION.match(text)
    if not match or float(match[1]) <= 0:
        raise ConfigError(
            f"{option} must be a positive age such as 1h, 6h, 24h or 7d, got {text!r}"
        )
    return float(match[1]) * _UNIT_SECONDS[match[2]]


def _replay(args: argparse.Namespace, console: Console, connect_url: ConnectUrl) -> int:
    import asyncio

    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from projections.pipeline.projector import replay

    urls = connect_url(args)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,  # the summary line below replaces it
        disable=not console.is_terminal,  # logs get the summary, not the redraws
    ) as progress:
        task = progress.add_task(f"replaying into {args.db}")
        if args.follow:
            console.print(f"following the event stream into {args.db} (Ctrl-C to stop)")

        def on_progress(last_seq: int, target: int) -> None:
            done = f"{last_seq:,} / {target:,}" if target else f"{last_seq:,}"
            line = f"replaying into {args.db}: sequence {done}"
            progress.update(task, description=line)
            if not console.is_terminal:  # a log gets a line per batch instead of redraws
                console.print(line, markup=False)

        try:
            stats = asyncio.run(
                replay(
                    urls, args.db, rebuild=args.rebuild, follow=args.follow, on_progress=on_progress
                )
            )
        except KeyboardInterrupt:
            if not args.follow:
                raise
            # Ctrl-C is how --follow ends; every applied batch is already committed.
            console.print(f"stopped following; {args.db} is up to date to the last batch")
            return 0
    console.print(
        f"{stats.applied} events applied, {stats.rejected} rejected "
        f"in {stats.seconds:.2f} s into {args.db}",
        markup=False,
    )
    return 0


# The handlers validate arguments and read the database before importing the statistics
# (scipy takes over a second to import), so a user error is reported at once.


def _report(args: argparse.Namespace, console: Console) -> int:
    from projections.queries import read

    if args.top < 0 or args.horizon < 1 or args.z_threshold <= 0:
        raise ConfigError("--top must be >= 0, --horizon >= 1 and --z-threshold > 0")
    now = time.time()
    since = now - parse_age(args.since, "--since") if args.since else None
    con = read.open_db(args.db)
    try:
        rows = read.runs(con), read.cases(con, since=since), read.results(con, since=since)
    finally:
        con.close()
    from projections.reports import content, html, json_doc, markdown

    built = content.build(
        *rows,
        database=str(args.db),
        generated_at=now,
        since=since,
        top=args.top,
        z_threshold=args.z_threshold,
        horizon=args.horizon,
    )
    writers = {"md": markdown.render, "json": json_doc.render, "html": html.render}
    text = writers[args.format](built)
    if args.output is None:
        sys.stdout.write(text)
        return 0
    try:
        args.output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    console.print(f"wrote {args.format} report to {args.output}", markup=False)
    return 0


def _regressions(args: argparse.Namespace, console: Console) -> int:
    from projections.queries import read, refs

    if not 0 < args.alpha < 1:
        raise ConfigError("--alpha must be between 0 and 1")
    if args.threshold < 0:
        raise ConfigError("--threshold must not be negative")
    con = read.open_db(args.db)
    try:
        runs = read.runs(con)
        base = refs.resolve(args.baseline, runs, latest=args.runs)
        cand = refs.resolve(args.candidate, runs, latest=args.runs)
        refs.check_disjoint(base, cand)
        rows = [
            (read.results(con, run_ids=s.run_ids), read.cases(con, run_ids=s.run_ids))
            for s in (base, cand)
        ]
    finally:
        con.close()
    from dtf.cli import analysis_views
    from projections.queries import regressions
    from projections.reports.json_doc import dumps

    baseline, candidate = (regressions.samples(*side) for side in rows)
    changes = regressions.compare(
        baseline, candidate, alpha=args.alpha, threshold_pct=args.threshold
    )
    if args.format == "json":
        doc = {
            "baseline": refs.selection_json(base),
            "candidate": refs.selection_json(cand),
            "alpha": args.alpha,
            "threshold_pct": args.threshold,
            "regressions": sum(c.verdict == "regression" for c in changes),
            "metrics": [regressions.change_json(c) for c in changes],
        }
        sys.stdout.write(dumps(doc))
    else:
        analysis_views.print_regressions(console, base, cand, changes, args.alpha, args.threshold)
    return 1 if regressions.regressed(changes) else 0


def _trends(args: argparse.Namespace, console: Console) -> int:
    if args.input is not None:
        return _trends_of_file(args, console)
    from projections.queries import read, series

    if args.min_points < 1:
        raise ConfigError("--min-points must be at least 1")
    con = read.open_db(args.db)
    try:
        chosen = series.metric_series(read.results(con)) + series.duration_series(
            read.cases(con), min_points=args.min_points
        )
    finally:
        con.close()
    chosen = series.select(chosen, args.metric)
    if args.metric is not None and not chosen:
        raise ConfigError(f"no series of metric {args.metric!r} in {args.db}")
    from dtf.cli import analysis_views
    from projections.queries import trends
    from projections.reports.json_doc import dumps

    changes = trends.of_series(chosen, args.detector)
    if args.format == "json":
        sys.stdout.write(dumps(trends.series_json(changes)))
    else:
        units = {s.label: s.unit for s in chosen}
        located = {
            k: [(c.change, c.old_commit, c.new_commit) for c in v] for k, v in changes.items()
        }
        analysis_views.print_trends(console, located, units)
    return 0


def _trends_of_file(args: argparse.Namespace, console: Console) -> int:
    from projections.queries import trend_input

    values = trend_input.load(args.input)
    if args.metric is not None:
        if args.metric not in values:
            raise ConfigError(f"no series {args.metric!r} in {args.input}")
        values = {args.metric: values[args.metric]}
    from dtf.cli import analysis_views
    from projections.queries import trends
    from projections.reports.json_doc import dumps

    found = trends.of_values(values, args.detector)
    if args.format == "json":
        sys.stdout.write(dumps(trends.values_json(found)))
    else:
        analysis_views.print_trends(
            console, {k: [(c, "", "") for c in v] for k, v in found.items()}, {}
        )
    return 0


def _errors(args: argparse.Namespace, console: Console) -> int:
    from projections.queries import read

    window = parse_age(args.window, "--window")
    if not 0 < args.similarity <= 1:
        raise ConfigError("--similarity must be in (0, 1]")
    if args.min_count < 1:
        raise ConfigError("--min-count must be at least 1")
    since = time.time() - window
    con = read.open_db(args.db)
    try:
        rows = read.errors(con, since=since)
    finally:
        con.close()
    from dtf.cli import analysis_views
    from projections.queries import error_patterns
    from projections.reports.json_doc import dumps

    found = error_patterns.patterns(rows, threshold=args.similarity, min_count=args.min_count)
    if args.format == "json":
        doc = {
            "window": args.window,
            "since": since,
            "errors": len(rows),
            "patterns": [error_patterns.pattern_json(p) for p in found],
        }
        sys.stdout.write(dumps(doc))
    else:
        analysis_views.print_errors(console, found, len(rows), args.window)
    return 0


def _best(args: argparse.Namespace, console: Console) -> int:
    if not 0 < args.alpha < 1:
        raise ConfigError("--alpha must be between 0 and 1")
    if args.min_samples < 1:
        raise ConfigError("--min-samples must be at least 1")
    since = time.time() - parse_age(args.since, "--since") if args.since else None
    from projections.queries import read

    con = read.open_db(args.db)
    try:
        rows = read.results(con, since=since)
    finally:
        con.close()
    from dtf.cli import analysis_views
    from projections.queries import best
    from projections.reports.json_doc import dumps

    found = best.best(
        rows,
        args.metric,
        by=args.by,
        direction=args.direction,
        alpha=args.alpha,
        min_samples=args.min_samples,
    )
    if args.format == "json":
        sys.stdout.write(dumps(best.best_json(found)))
    else:
        analysis_views.print_best(console, found)
    return 0


def _flaky(args: argparse.Namespace, console: Console) -> int:
    from projections.queries import read

    if args.limit < 1 or args.min_runs < 1:
        raise ConfigError("--limit and --min-runs must be at least 1")
    since = time.time() - parse_age(args.since, "--since") if args.since else None
    con = read.open_db(args.db)
    try:
        rows = read.cases(con, since=since)
    finally:
        con.close()
    from dtf.cli import analysis_views
    from projections.queries import flaky
    from projections.reports.json_doc import dumps

    found = flaky.flaky_tests(rows, min_runs=args.min_runs)
    tests = len({row.nodeid for row in rows})
    if args.format == "json":
        doc = {
            "since": since,
            "tests": tests,
            "flaky": len(found),
            "items": [flaky.flaky_json(t) for t in found[: args.limit]],
        }
        sys.stdout.write(dumps(doc))
    else:
        analysis_views.print_flaky(console, found[: args.limit], len(found), tests)
    return 0


def _badge(args: argparse.Namespace, console: Console) -> int:
    import json

    from dtf.client.reports import write_atomically
    from projections.queries import flaky, read
    from projections.reports import badges

    flaky_since = time.time() - parse_age(args.flaky_since, "--flaky-since")
    percent = _coverage_percent(args.coverage_xml) if args.coverage_xml else None
    con = read.open_db(args.db)
    try:
        runs = read.runs(con)
        if args.run is not None:
            chosen = [r for r in runs if r.run_id == args.run]
        else:
            chosen = [r for r in runs if args.branch is None or r.branch == args.branch]
        if not chosen:
            which = f" of branch {args.branch}" if args.branch else ""
            raise ConfigError(f"no run{' ' + args.run if args.run else which} in {args.db}")
        run = chosen[-1]
        cases = read.cases(con, run_ids=[run.run_id])
        history = read.cases(con, since=flaky_since)
    finally:
        con.close()
    final: dict[str, str] = {}
    for case in cases:  # time order: the last decisive row of each test is its outcome
        if case.outcome != "rerun":
            final[case.nodeid] = case.outcome
    found = badges.all_badges(final.items(), percent, len(flaky.flaky_tests(history)))
    for name, badge in found.items():
        try:
            write_atomically(args.output_dir / name, json.dumps(badge).encode())
        except OSError as exc:
            raise ConfigError(f"cannot write {args.output_dir / name}: {exc.strerror}") from None
    console.print(
        f"wrote {len(found)} badges for run {run.run_id} to {args.output_dir}: " + ", ".join(found),
        markup=False,
    )
    return 0


def _coverage_percent(path: Path) -> float:
    """The line rate of a Cobertura XML report, in percent; ConfigError when unreadable."""
    import xml.etree.ElementTree as ET

    try:
        rate = ET.parse(path).getroot().get("line-rate")
        return 100 * float(rate or "")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (ET.ParseError, ValueError):
        raise ConfigError(f"{path} is not a Cobertura XML report (no line-rate)") from None
