"""The command-line arguments of the analysis commands (`dtf replay`, `report`,
`regressions`, `trends`, `errors`, `best`, `flaky`, `badge`); `dtf.cli.analysis` runs them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DB = "dtf.duckdb"
COMMANDS = ("replay", "report", "regressions", "trends", "errors", "best", "flaky", "badge")
# The names of `projections.analytics.detectors.DETECTORS`, the default first: importing the
# registry here would load numpy and scipy for every command (a test keeps the two in step).
DETECTORS = ("steps", "segments")

ServerArg = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, server_arg: ServerArg) -> None:
    """Add the analysis subcommands to the `dtf` subparsers `sub`."""
    _add_replay(sub, server_arg)
    _add_report(sub)
    _add_regressions(sub)
    _add_trends(sub)
    _add_errors(sub)
    _add_best(sub)
    _add_flaky(sub)
    _add_badge(sub)


def _add_badge(sub: Any) -> None:
    badge = sub.add_parser(
        "badge",
        help="write shields.io endpoint badges: status, suites, coverage, flaky tests",
        description="Write shields.io endpoint JSON files into --output-dir: tests.json (the "
        "latest run's outcomes, of --branch if given, or of --run), suite-<name>.json for "
        "each suite (the directory below the top test directory: unit, system, ...), "
        "flaky.json (tests flaky in the runs of the last --flaky-since) and, with "
        "--coverage-xml, coverage.json. Show one with "
        "https://img.shields.io/endpoint?url=<the file's public URL>.",
    )
    _db_arg(badge)
    badge.add_argument(
        "--output-dir", type=Path, default=Path("badges"), metavar="DIR", help="(default badges)"
    )
    which = badge.add_mutually_exclusive_group()
    which.add_argument("--branch", metavar="NAME", help="the latest run of this branch")
    which.add_argument("--run", metavar="RUN_ID", help="this run")
    badge.add_argument(
        "--coverage-xml", type=Path, metavar="FILE", help="a Cobertura XML report (coverage.xml)"
    )
    badge.add_argument(
        "--flaky-since", default="30d", metavar="AGE", help="flaky tests' window (default 30d)"
    )


def _add_flaky(sub: Any) -> None:
    flaky = sub.add_parser(
        "flaky",
        help="the flakiest tests: in how many of their runs they were flaky",
        description="List the tests that were flaky in at least one run, flakiest first. A run "
        "is flaky for a test when the test passed only after failing (--reruns), or failed "
        "while the same commit passed in another run. The rate is flaky runs over the runs in "
        "which the test passed, failed or errored. Tests listed here can be kept from failing "
        "builds with [tool.dtf] quarantine (they still run).",
    )
    _db_arg(flaky)
    flaky.add_argument("--since", metavar="AGE", help="only runs newer than AGE, e.g. 7d, 12h")
    flaky.add_argument(
        "--limit", type=int, default=20, metavar="N", help="list at most N tests (default 20)"
    )
    flaky.add_argument(
        "--min-runs",
        type=int,
        default=1,
        metavar="N",
        help="only tests seen in at least N runs (default 1)",
    )
    _format_arg(flaky, "text", "json")


def _add_replay(sub: Any, server_arg: ServerArg) -> None:
    replay = sub.add_parser(
        "replay",
        help="build or update the DuckDB read model from the event stream",
        description="Apply the events of the stream to the read-model database, continuing "
        "from the last applied sequence. --rebuild starts from an empty file; --follow keeps "
        "applying new events until Ctrl-C.",
    )
    server_arg(replay)
    _db_arg(replay)
    replay.add_argument("--rebuild", action="store_true", help="drop the tables and replay all")
    replay.add_argument("--follow", action="store_true", help="keep following new events")


def _add_report(sub: Any) -> None:
    report = sub.add_parser(
        "report",
        help="write a report: flaky, failing and slow tests, benchmarks, trends",
        description="Summarise the read model: flaky, failing and slowest tests, benchmark "
        "statistics, the best hardware class per benchmark, change points, anomalous latest "
        "values and forecasts. The HTML report is one self-contained file with SVG charts.",
    )
    _db_arg(report)
    _format_arg(report, "md", "json", "html")
    report.add_argument(
        "-o", "--output", type=Path, metavar="FILE", help="write here (default stdout)"
    )
    report.add_argument("--since", metavar="AGE", help="only data newer than AGE, e.g. 7d, 12h")
    report.add_argument(
        "--top", type=int, default=10, metavar="N", help="slowest tests shown (default 10)"
    )
    report.add_argument(
        "--z-threshold",
        type=float,
        default=3.5,
        metavar="Z",
        help="robust z-score above which a latest value is anomalous (default 3.5)",
    )
    report.add_argument(
        "--horizon", type=int, default=3, metavar="N", help="values to forecast (default 3)"
    )


def _add_regressions(sub: Any) -> None:
    regressions = sub.add_parser(
        "regressions",
        help="compare a candidate with a baseline; exit 1 on a significant regression",
        description="Compare every metric (and every test duration with at least 3 samples a "
        "side, as duration:<nodeid>) between two refs with a Mann-Whitney test and the "
        "Hodges-Lehmann shift, controlling the false discovery rate (Benjamini-Hochberg). A REF "
        "is a run id, a commit (or unique prefix: all its runs) or a branch (its latest --runs "
        "runs). Exit code 1 when a change in the worse direction is significant and at least "
        "--threshold percent, 0 otherwise.",
    )
    _db_arg(regressions)
    regressions.add_argument(
        "--baseline", required=True, metavar="REF", help="what to compare against"
    )
    regressions.add_argument("--candidate", required=True, metavar="REF", help="what is judged")
    regressions.add_argument(
        "--runs", type=int, default=5, metavar="N", help="runs taken from a branch ref (default 5)"
    )
    add_regression_limits(regressions)
    _format_arg(regressions, "text", "json")


def add_regression_limits(p: argparse.ArgumentParser) -> None:
    """--threshold and --alpha of a regression comparison (`dtf regressions`, `dtf ci`)."""
    p.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="PCT",
        help="ignore changes smaller than PCT percent (default 5)",
    )
    p.add_argument(
        "--alpha", type=float, default=0.05, metavar="A", help="false discovery rate (default 0.05)"
    )


def _add_trends(sub: Any) -> None:
    trends = sub.add_parser(
        "trends",
        help="change points in the history of each metric, or of series in a file",
        description="Detect change points in each metric x dims x hardware series ordered by "
        "time, and in each test's passed durations with at least --min-points points. With "
        "--input, read series from a CSV file (columns series,index,value) or a JSON file "
        '({"series": [values]}) instead. Each change has its index (the 0-based first point '
        "of the new segment) and the range of indices where it may start, the size in percent "
        "with its 95% interval, the p-value of the test that confirmed it and, for recorded "
        "series, the commits it falls between: OLD..NEW means after OLD, up to and including "
        "NEW (what `git log OLD..NEW` lists). The default detector, steps, is made for "
        "benchmark histories (log values, outliers clipped, a penalty from a robust noise "
        "estimate, Mann-Whitney confirmation); segments fits flat or straight-line segments "
        "confirmed by Welch's t-test, for series with trends.",
    )
    _db_arg(trends)
    trends.add_argument("--input", type=Path, metavar="FILE", help="analyse series from FILE")
    trends.add_argument(
        "--metric",
        metavar="NAME",
        help="only this metric: a name, a full label, or 'duration' for test durations",
    )
    trends.add_argument(
        "--min-points",
        type=int,
        default=10,
        metavar="N",
        help="test durations need N points (default 10)",
    )
    trends.add_argument(
        "--detector",
        choices=DETECTORS,
        default=DETECTORS[0],
        help=f"change-point detector (default {DETECTORS[0]})",
    )
    _format_arg(trends, "text", "json")


def _add_errors(sub: Any) -> None:
    errors = sub.add_parser(
        "errors",
        help="recurring error patterns over a time window",
        description="Group recent errors by message fingerprint (numbers, hex, paths, ids and "
        "addresses stripped), merge fingerprints whose token similarity reaches --similarity, "
        "and list the patterns seen at least --min-count times with first/last seen and "
        "breakdowns by category, worker and hardware.",
    )
    _db_arg(errors)
    errors.add_argument(
        "--window",
        default="24h",
        metavar="AGE",
        help="look back this far: 1h, 6h, 24h, 7d (default 24h)",
    )
    errors.add_argument(
        "--similarity", type=float, default=0.8, metavar="S", help="merge threshold (default 0.8)"
    )
    errors.add_argument(
        "--min-count", type=int, default=2, metavar="N", help="patterns seen N times (default 2)"
    )
    _format_arg(errors, "text", "json")


def _add_best(sub: Any) -> None:
    best = sub.add_parser(
        "best",
        help="rank the configurations of a metric: the best, by how much, and how sure",
        description="Rank the configurations of METRIC by median, best first, each with its "
        "sample count and its margin over the next one (the Hodges-Lehmann shift in percent, "
        "positive meaning better, with its 95% interval and Mann-Whitney's p-value). A "
        "configuration is a combination of values of the --by dimensions: hardware (the "
        "worker's hardware class) or a key of the metric's dims (model, config, ...). The "
        "dimensions not named split the rankings, one per combination of their values, so "
        "only measurements taken under the same conditions compete; without --by every "
        "recorded dimension makes the configuration. A ranking is decided when the best "
        "one's margin over the runner-up is significant at --alpha and both have at least "
        "--min-samples samples; otherwise it says the data is too thin to decide.",
    )
    best.add_argument("metric", metavar="METRIC", help="the metric's name")
    _db_arg(best)
    best.add_argument(
        "--by",
        action="extend",
        nargs="+",
        default=[],
        metavar="DIM",
        help="dimensions that make a configuration (default: all recorded)",
    )
    goal = best.add_mutually_exclusive_group()
    goal.add_argument(
        "--minimize",
        dest="direction",
        action="store_const",
        const="lower",
        help="lower is better (default: the direction the metric was recorded with)",
    )
    goal.add_argument(
        "--maximize",
        dest="direction",
        action="store_const",
        const="higher",
        help="higher is better",
    )
    best.add_argument("--since", metavar="AGE", help="only results newer than AGE, e.g. 30d")
    best.add_argument(
        "--alpha", type=float, default=0.05, metavar="A", help="significance level (default 0.05)"
    )
    best.add_argument(
        "--min-samples",
        type=int,
        default=3,
        metavar="N",
        help="samples each of the two leaders needs to decide (default 3)",
    )
    _format_arg(best, "text", "json")


def _format_arg(p: argparse.ArgumentParser, default: str, *others: str) -> None:
    p.add_argument(
        "--format",
        choices=[default, *others],
        default=default,
        help=f"output format (default {default})",
    )


def _db_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        metavar="PATH",
        help=f"read-model database (default {DEFAULT_DB})",
    )
