"""GitHub Actions: workflow commands for annotations, the step summary and step outputs.

An annotation is one line on stdout, `::error file=F,line=L,title=T::MESSAGE`; in the
message `%`, CR and LF are escaped as `%25`, `%0D`, `%0A`, and in a property `:` and `,`
too (`%3A`, `%2C`), as GitHub's toolkit (`@actions/core`, `command.ts`) does. The step
summary is Markdown appended to the file named by $GITHUB_STEP_SUMMARY, outputs are
`name=value` lines appended to $GITHUB_OUTPUT.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from dtf.ci.locations import location
from dtf.ci.result import CiResult
from dtf.core.outcomes import pytest_counts
from projections.reports.display import pct

# GitHub shows at most 10 errors and 10 warnings of a step, 50 of a job: more only clutter
# the log, and the step summary lists every failure anyway.
MAX_ANNOTATIONS = 50
MAX_MESSAGE = 4000


def escape_data(text: str) -> str:
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


def command(kind: str, message: str, **properties: str | int | None) -> str:
    """One workflow command line, e.g. `::error file=a.py,line=3,title=T::it broke`."""
    props = ",".join(
        f"{key}={escape_property(str(value))}"
        for key, value in properties.items()
        if value is not None and value != ""
    )
    return f"::{kind}{' ' + props if props else ''}::{escape_data(message[:MAX_MESSAGE])}"


def annotation_lines(result: CiResult) -> list[str]:
    """Errors for failures, warnings for flaky tests and regressions, at most MAX_ANNOTATIONS
    (then a notice of how many were left out)."""
    lines: list[str] = []
    for case in result.failures:
        path, line = location(case)
        message = case.longrepr or case.message or case.outcome
        lines.append(
            command("error", message, file=path, line=line, title=f"{case.nodeid} {case.outcome}")
        )
    for case in result.flaky:
        path, _ = location(case)
        text = f"{case.nodeid} passed after {case.reruns} failed run(s)"
        lines.append(command("warning", text, file=path, title="flaky test"))
    for case in result.quarantined:
        path, line = location(case)
        text = f"{case.nodeid} {case.outcome} (quarantined: does not fail the build)"
        lines.append(
            command("warning", text, file=path, line=line, title="quarantined test failed")
        )
    if result.check is not None:
        for change in result.check.regressions:
            c = change.comparison
            text = (
                f"{change.metric}: {pct(c.pct_change)} against {result.check.baseline} "
                f"(median {c.baseline_median:.4g} -> {c.candidate_median:.4g} {change.unit}, "
                f"q={change.q_value:.4f})"
            )
            lines.append(command("warning", text, title="performance regression"))
    if len(lines) > MAX_ANNOTATIONS:
        left = len(lines) - MAX_ANNOTATIONS
        lines = lines[:MAX_ANNOTATIONS]
        lines.append(command("notice", f"{left} more annotation(s) left out; see the step summary"))
    return lines


def outputs(result: CiResult, output_dir: Path) -> dict[str, str]:
    """The step's outputs (`steps.<id>.outputs.<name>`)."""
    counts = pytest_counts(result.cases)
    found = {
        "exit-code": str(result.exit_code),
        "run-id": result.run_id,
        "report-dir": str(output_dir),
        "tests": str(len(result.cases)),
        "passed": str(counts.get("passed", 0)),
        "failed": str(counts.get("failed", 0)),
        "errors": str(counts.get("error", 0)),
        "skipped": str(counts.get("skipped", 0)),
        "flaky": str(len(result.flaky)),
        "quarantined": str(len(result.quarantined)),
        "undeclared-requirements": str(len(result.undeclared)),
    }
    if result.check is not None:
        found["regressions"] = str(len(result.check.regressions))
    if result.coverage is not None:
        found["coverage"] = f"{result.coverage:.1f}"
    return found


def append_files(env: Mapping[str, str], markdown: str, values: Mapping[str, str]) -> list[Path]:
    """Append the summary and the outputs to the files GitHub names; the files written."""
    written = []
    for var, text in (
        ("GITHUB_STEP_SUMMARY", markdown + "\n"),
        ("GITHUB_OUTPUT", "".join(f"{k}={v}\n" for k, v in values.items())),
    ):
        if env.get(var):
            path = Path(env[var])
            with path.open("a", encoding="utf-8") as f:
                f.write(text)
            written.append(path)
    return written
