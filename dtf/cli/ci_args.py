"""The arguments of `dtf ci`: every option of `dtf run`, and the pipeline's own."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dtf.ci.providers import PROVIDERS
from dtf.cli.analysis_args import DEFAULT_DB, add_regression_limits

DEFAULT_OUTPUT_DIR = Path("dtf-reports")


def add_command(sub: Any, add_run_options: Callable[[argparse.ArgumentParser], None]) -> None:
    ci = sub.add_parser(
        "ci",
        help="run the suite in a CI pipeline: labels, reports, annotations, badges",
        description="Run the suite as `dtf run` does, labelled with the commit, branch, pull "
        "or merge request and job URL of the CI system (GitHub Actions, GitLab CI, Jenkins, "
        "detected from its environment), and write JUnit XML, JSON, Markdown and HTML "
        "reports and badges into --output-dir. GitHub gets a step summary, annotations and "
        "step outputs; GitLab a collapsible log section and a code-quality report; Jenkins a "
        "plain summary. The exit code is pytest's; with --fail-on-regression also 1 when a "
        "benchmark or test duration regressed significantly against --baseline. --analyze "
        "only lists the tests that seem to need hardware they do not declare.",
    )
    add_run_options(ci)
    ci.add_argument(
        "--provider",
        choices=["auto", *PROVIDERS],
        default="auto",
        help="the CI system (default auto: from its environment variables)",
    )
    ci.add_argument(
        "--output-dir",
        type=Path,
        default=DEFAULT_OUTPUT_DIR,
        metavar="DIR",
        help=f"where reports and badges go (default {DEFAULT_OUTPUT_DIR})",
    )
    ci.add_argument(
        "--analyze",
        action="store_true",
        help="collect the tests and list their declared and suggested hardware needs; run nothing",
    )
    ci.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a metric regressed significantly against --baseline (needs --server)",
    )
    ci.add_argument(
        "--baseline",
        metavar="REF",
        help="runs to compare with: a run id, commit or branch (default: the pull/merge "
        "request's target branch, else this branch's earlier runs)",
    )
    ci.add_argument(
        "--db",
        type=Path,
        default=Path(DEFAULT_DB),
        metavar="FILE",
        help=f"the read model the regression check updates and reads (default {DEFAULT_DB})",
    )
    add_regression_limits(ci)
