"""`dtf run` prints what plain pytest prints: the same sections, titles, short summary lines.

Each scenario runs one small suite twice, with plain `python -m pytest` and with the real
`dtf run` CLI on two local workers, both 100 columns wide, and compares the ends of their
output.  The differences that remain are dtf's one outcome per item (see
tests/support/plain_pytest.py): pytest counts an item whose teardown errored twice and lists
its call outcome as well.
Timings are not compared, and skips are compared without line numbers, which workers do not
send yet.  Also here: the width rule, and the live counts using the final line's words.
"""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from rich.console import Console

from dtf.cli.main import console_width
from dtf.client.progress import RunProgress
from dtf.core.outcomes import count, summary_line
from dtf.core.state import View
from events.catalogue import (
    CaseProgress,
    CaseResult,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskStarted,
)
from tests.support.paths import TESTS
from tests.support.plain_pytest import parse_counts, summary_sections

HERE = TESTS
WIDTH = "100"

ERRORS_SUITE = """
    import pytest

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    @pytest.fixture
    def late():
        yield
        raise ValueError("teardown broke")

    def test_pass():
        pass

    def test_fail():
        assert 1 == 2, "one is not two"

    def test_setup_error(broken):
        pass

    def test_teardown_error(late):
        pass

    def test_skip():
        pytest.skip("not here")

    @pytest.mark.skipif(True, reason="never on this OS")
    def test_skipif():
        pass

    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert False

    @pytest.mark.xfail
    def test_xfail_without_reason():
        assert False

    @pytest.mark.xfail(reason="fixed now")
    def test_xpass():
        pass

    @pytest.mark.parametrize("n", [1, 2])
    def test_param(n):
        assert n == 1
"""


@dataclass(frozen=True)
class Scenario:
    files: dict[str, str]
    dtf_args: list[str]
    pytest_args: list[str]
    # Items pytest reports twice (call outcome, then a teardown error), with the call outcome.
    double_counted: dict[str, str] = field(default_factory=dict)
    sample: bool = False  # start from tests/sample_suite


SCENARIOS = {
    "sample-suite-rA": Scenario(
        # Hardware markers would make dtf skip those tests here; plain pytest runs them.
        files={
            "pytest.ini": "[pytest]\naddopts = -rA --durations=5\n",
            "-test_requirements.py": "",
        },
        dtf_args=[],
        pytest_args=[],
        double_counted={
            "test_outcomes.py::test_error_in_fixture_teardown": "passed",
            "test_outcomes.py::test_fails_and_teardown_errors": "failed",
        },
        sample=True,
    ),
    "errors-skips-xfails-ra": Scenario(
        files={
            "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-ra"\n',
            "tests/test_mixed.py": ERRORS_SUITE,
        },
        dtf_args=["--durations", "3"],
        pytest_args=["--durations=3"],
        double_counted={"tests/test_mixed.py::test_teardown_error": "passed"},
    ),
}


def make_project(root: Path, scenario: Scenario) -> None:
    if scenario.sample:
        # Without its subtests: pytest gives each failed subtest a section and a SUBFAILED
        # line of its own, dtf one per item with every failed subtest inside (tested apart,
        # in test_run_e2e.py).
        shutil.copytree(
            HERE / "sample_suite",
            root,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("test_subtests.py"),
        )
    for name, text in scenario.files.items():
        if name.startswith("-"):
            (root / name[1:]).unlink()
            continue
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


def output_env() -> dict[str, str]:
    env = {**os.environ, "COLUMNS": WIDTH, "PY_COLORS": "0"}
    for name in ("PYTEST_ADDOPTS", "CI", "BUILD_NUMBER", "FORCE_COLOR"):
        env.pop(name, None)
    return env


def run(argv: list[str], root: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        argv, cwd=root, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert "Traceback" not in done.stderr, done.stderr
    return done.stdout


def without_line_numbers(line: str) -> str:
    """`SKIPPED [1] test_a.py:12: why` as dtf prints it until workers send where skips ran."""
    return re.sub(r"^(SKIPPED \[\d+\] \S+?):\d+:", r"\1:", line)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_summary_matches_plain_pytest(tmp_path: Path, name: str) -> None:
    scenario = SCENARIOS[name]
    make_project(tmp_path, scenario)
    plain_env = {**output_env(), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    plain_out = run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *scenario.pytest_args],
        tmp_path,
        plain_env,
    )
    dtf_out = run(
        [sys.executable, "-m", "dtf", "run", "--no-progress", "-n", "2", *scenario.dtf_args],
        tmp_path,
        output_env(),
    )
    plain, ours = summary_sections(plain_out), summary_sections(dtf_out)

    # Section rules, padding included: ERRORS, FAILURES, PASSES, XPASSES, durations, short.
    assert ours.rules == plain.rules, dtf_out
    twice = scenario.double_counted
    failed_twice = {nodeid.rpartition("::")[2] for nodeid, o in twice.items() if o == "failed"}
    assert ours.titles == [t for t in plain.titles if t not in failed_twice]
    also_listed = {f"{o.upper()} {nodeid}" for nodeid, o in twice.items()}
    expected_short = [
        without_line_numbers(line)
        for line in plain.short
        if line.partition(" - ")[0] not in also_listed
    ]
    assert ours.short == expected_short, dtf_out
    # One count per item, unless workers send pytest's own tally of an item's reports.
    plain_counts = parse_counts(plain.final)
    per_item = Counter(plain_counts)
    per_item.subtract(twice.values())
    assert parse_counts(ours.final) in (plain_counts, dict(+per_item))
    assert all(len(line) == int(WIDTH) for line in ours.rules)


@pytest.mark.parametrize(
    ("environ", "is_terminal", "width"),
    [
        ({"COLUMNS": "100"}, False, 100),
        ({"COLUMNS": "100"}, True, 100),
        ({}, False, 80),  # pytest's fallback off a terminal
        ({}, True, None),  # rich measures the terminal, and follows it when resized
        ({"COLUMNS": "30"}, False, 80),  # pytest distrusts a width under 40
        ({"COLUMNS": "wide"}, False, 80),
        ({"COLUMNS": "0"}, True, None),
    ],
)
def test_console_width_follows_pytest(
    environ: dict[str, str], is_terminal: bool, width: int | None
) -> None:
    assert console_width(environ, is_terminal) == width


def ev(cls: type, n: int, **fields: object) -> object:
    return cls(id=f"e{n}", at=float(n), actor="t", **fields)


def test_live_counts_use_the_words_of_the_final_line() -> None:
    """Counted from the tasks' final states: a retried attempt's errors do not stay counted."""
    view = View()
    out = io.StringIO()
    progress = RunProgress(
        Console(file=out, width=120, force_terminal=True, color_system=None),
        total=5,
        enabled=True,
        count_cases=True,
    )
    module_skip = CaseResult("test_m.py", "skipped", message="module")
    lost = (CaseResult("a.py::t1", "error", message="worker lost"),)
    done = (
        CaseResult("a.py::t1", "failed", message="assert 0"),
        CaseResult("a.py::t2", "error", message="error in setup: boom"),
    )
    events = [
        ev(RunSubmitted, 1, run_id="r", task_ids=("r.0", "r.1"), precollected=(module_skip,)),
        ev(TaskQueued, 2, task_id="r.0", run_id="r", kind="pytest", nodeids=("a.py::t1",)),
        ev(TaskQueued, 3, task_id="r.1", run_id="r", kind="pytest", nodeids=("b.py::t3",)),
        ev(TaskAssigned, 4, task_id="r.0", worker_id="w", attempt=1),
        ev(TaskFailed, 5, task_id="r.0", worker_id="w", category="infrastructure", cases=lost),
        ev(TaskRetryScheduled, 6, task_id="r.0", attempt=1),
        ev(TaskAssigned, 7, task_id="r.0", worker_id="w", attempt=2),
        ev(TaskStarted, 8, task_id="r.0", worker_id="w", attempt=2),
        ev(TaskCompleted, 9, task_id="r.0", worker_id="w", attempt=2, cases=done),
        ev(TaskAssigned, 10, task_id="r.1", worker_id="w", attempt=1),
        ev(
            TaskCompleted,
            11,
            task_id="r.1",
            worker_id="w",
            attempt=1,
            cases=(CaseResult("b.py::t3", "passed"),),
        ),
    ]
    for seq, event in enumerate(events, start=1):
        view.apply(event, seq)  # type: ignore[arg-type]
        progress.update(view, "r", event)  # type: ignore[arg-type]

    final = count(view.run_cases("r"))
    assert +progress.counts == final == {"failed": 1, "passed": 1, "skipped": 1, "error": 1}
    assert progress.done == 4
    assert progress.counts_line().plain == summary_line(final, 0.0).removesuffix(" in 0.00s")
    assert progress.counts_line().plain == "1 failed, 1 passed, 1 skipped, 1 error"
    console = Console(file=out, width=120, color_system=None)
    console.print(progress.bar)
    assert "4/5" in out.getvalue()


def test_progress_notes_count_until_the_task_ends() -> None:
    """Each note moves the counts at once; the task's result then replaces what its notes
    added, and a note from an attempt that no longer counts is ignored."""
    view = View()
    progress = RunProgress(
        Console(file=io.StringIO(), width=120, force_terminal=True, color_system=None),
        total=2,
        enabled=True,
        count_cases=True,
    )
    events = [
        ev(RunSubmitted, 1, run_id="r", task_ids=("r.0",)),
        ev(TaskQueued, 2, task_id="r.0", run_id="r", kind="pytest", nodeids=("a", "b")),
        ev(TaskAssigned, 3, task_id="r.0", worker_id="w", attempt=1),
        ev(TaskStarted, 4, task_id="r.0", worker_id="w", attempt=1),
    ]
    for seq, event in enumerate(events, start=1):
        view.apply(event, seq)  # type: ignore[arg-type]
        progress.update(view, "r", event)  # type: ignore[arg-type]
    progress.case_done(view, CaseProgress("r.0", 1, "a", "failed"))
    progress.case_done(view, CaseProgress("r.0", 9, "b", "passed"))  # not a live attempt
    assert (+progress.counts, progress.done) == ({"failed": 1}, 1)
    done = (CaseResult("a", "failed"), CaseResult("b", "passed"))
    completed = ev(TaskCompleted, 5, task_id="r.0", worker_id="w", attempt=1, cases=done)
    view.apply(completed, 5)  # type: ignore[arg-type]
    progress.update(view, "r", completed)  # type: ignore[arg-type]
    assert (+progress.counts, progress.done) == ({"failed": 1, "passed": 1}, 2)
