"""The command-line arguments of the analysis commands (`dtf replay`, `report`,
`regressions`, `trends`, `errors`); `dtf.cli.analysis` runs them."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_DB = "dtf.duckdb"
COMMANDS = ("replay", "report", "regressions", "trends", "errors")

ServerArg = Callable[[argparse.ArgumentParser], None]


def add_commands(sub: Any, server_arg: ServerArg) -> None:
    """Add the analysis subcommands to the `dtf` subparsers `sub`."""
    _add_replay(sub, server_arg)
    _add_report(sub)
    _add_regressions(sub)
    _add_trends(sub)
    _add_errors(sub)


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
    regressions.add_argument(
        "--threshold",
        type=float,
        default=5.0,
        metavar="PCT",
        help="ignore changes smaller than PCT percent (default 5)",
    )
    regressions.add_argument(
        "--alpha", type=float, default=0.05, metavar="A", help="false discovery rate (default 0.05)"
    )
    _format_arg(regressions, "text", "json")


def _add_trends(sub: Any) -> None:
    trends = sub.add_parser(
        "trends",
        help="change points in the history of each metric, or of series in a file",
        description="Detect change points (binary segmentation confirmed by Welch's t-test) in "
        "each metric x dims x hardware series ordered by time, and in each test's passed "
        "durations with at least --min-points points. With --input, read series from a CSV "
        'file (columns series,index,value) or a JSON file ({"series": [values]}) instead. '
        "An index is the 0-based first point of the new segment.",
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
