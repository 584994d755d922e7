"""dtf.runner against real pytest processes: collection, persistent sessions, crashes.

The sample suites under tests/sample_suite and tests/sample_crash are run both by plain
pytest (tests/support/plain_pytest.py reads its output) and by dtf, and must agree item by item.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap
import typing
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

from dtf.core.outcomes import pytest_counts
from dtf.errors import CollectionError
from dtf.runner.child.failure_text import LONGREPR_LIMIT, truncate_middle
from dtf.runner.collect import Collection, collect
from dtf.runner.pytest_session import PytestSession, SessionResult
from events.catalogue import Requirements
from tests.support.paths import ROOT
from tests.support.plain_pytest import run_plain_pytest
from tests.support.polling import eventually_async

SUITE = "tests/sample_suite"
CRASH = "tests/sample_crash"
OUTCOMES = f"{SUITE}/test_outcomes.py"
CRASH_FILE = f"{CRASH}/test_crash.py"
HANG_FILE = f"{CRASH}/test_hang.py"


@pytest.fixture(scope="module")
def suite() -> Collection:
    return collect(ROOT, [SUITE])


@pytest.fixture
async def sessions() -> AsyncIterator[Callable[..., PytestSession]]:
    """Makes `PytestSession`s (default: the sample suite) and closes them all afterwards."""
    made: list[PytestSession] = []

    def make(root: Path = ROOT, args: tuple[str, ...] = (SUITE,), **kwargs: Any) -> PytestSession:
        made.append(PytestSession(root, args, **kwargs))
        return made[-1]

    yield make
    for session in made:
        await session.close()


def outcomes(result: SessionResult) -> dict[str, str]:
    return {case.nodeid: case.outcome for case in result.cases}


def write_project(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).write_text(textwrap.dedent(text))
    return root


# --- collect ------------------------------------------------------------------------------


def test_collect_lists_what_pytest_collects(suite: Collection) -> None:
    listing = subprocess.run(
        [sys.executable, "-m", "pytest", SUITE, "--collect-only", "-q", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    expected = [line for line in listing.splitlines() if "::" in line]
    assert [item.nodeid for item in suite.items] == expected
    assert all(item.nodeid.startswith(item.path + "::") for item in suite.items)
    assert suite.errors == ()
    [skip] = suite.precollected
    assert skip.nodeid == f"{SUITE}/test_module_skip.py"
    assert (skip.outcome, skip.message) == ("skipped", "this module is skipped at import")


def test_collect_reads_requirements(suite: Collection) -> None:
    requirements = {item.nodeid.split("::", 1)[1]: item.requirements for item in suite.items}
    assert requirements["test_needs_gpu"] == Requirements(
        platform="linux",
        cpus=4,
        memory_gb=8,
        gpus=1,
        gpu_vendor="nvidia",
        gpu_memory_gb=16,
        labels=("fast",),
    )
    assert requirements["TestNeedsDatabase::test_class_marker"] == Requirements(labels=("db",))
    # The closest marker wins as a whole; markers are not merged.
    assert requirements["TestNeedsDatabase::test_closest_marker_wins"] == Requirements(memory_gb=2)
    assert requirements["test_no_requirements"] == Requirements()


def test_collect_reports_import_errors_and_bad_markers(tmp_path: Path) -> None:
    write_project(
        tmp_path,
        {
            "test_ok.py": "def test_ok(): pass\n",
            "test_broken.py": "import no_such_module_for_dtf\n",
            "test_marker.py": """
                import pytest

                @pytest.mark.dtf_requires(gpus="many")
                def test_bad_marker(): pass
            """,
        },
    )
    collection = collect(tmp_path, ["--strict-markers"])
    assert [item.nodeid for item in collection.items] == ["test_ok.py::test_ok"]
    errors = {error.nodeid: error for error in collection.errors}
    assert set(errors) == {"test_broken.py", "test_marker.py::test_bad_marker"}
    broken = errors["test_broken.py"]
    assert broken.outcome == "error"
    assert "No module named 'no_such_module_for_dtf'" in broken.message
    assert "no_such_module_for_dtf" in broken.longrepr
    assert "gpus" in errors["test_marker.py::test_bad_marker"].message


@pytest.mark.parametrize(
    ("args", "python", "expected"),
    [
        (["tests/no_such_dir"], sys.executable, "not found: tests/no_such_dir"),
        (["--no-such-option"], sys.executable, "unrecognized arguments: --no-such-option"),
        ([SUITE], "/nonexistent/python3", "cannot start /nonexistent/python3"),
    ],
)
def test_collect_errors_are_one_line(args: list[str], python: str, expected: str) -> None:
    with pytest.raises(CollectionError) as info:
        collect(ROOT, args, python=python)
    assert expected in str(info.value)
    assert "\n" not in str(info.value)


def test_collect_broken_conftest_is_one_line(tmp_path: Path) -> None:
    write_project(tmp_path, {"conftest.py": "import no_such_module_for_dtf\n", "test_a.py": ""})
    with pytest.raises(CollectionError, match="no_such_module_for_dtf") as info:
        collect(tmp_path, [])
    assert "\n" not in str(info.value)


# --- PytestSession -------------------------------------------------------------------------


async def test_session_agrees_with_plain_pytest(
    suite: Collection, sessions: Callable[..., PytestSession]
) -> None:
    plain = run_plain_pytest(ROOT, [SUITE])
    nodeids = [item.nodeid for item in suite.items]
    batches = [nodeids[:12], nodeids[12:30], nodeids[30:]]
    files = [{nodeid.split("::")[0] for nodeid in batch} for batch in batches]
    assert files[0] & files[1] and files[1] & files[2], "some module must span two batches"
    output: list[bytes] = []
    # -v as the reference has it: pytest's verbosity decides whether passed subtests count.
    session = sessions(args=(SUITE, "-v"), on_output=output.append)

    results = [await session.run(batch, timeout=60) for batch in batches]

    assert [(r.category, r.message) for r in results] == [(None, "")] * 3
    cases = {case.nodeid: case for result in results for case in result.cases}
    assert [case.nodeid for result in results for case in result.cases] == nodeids
    assert {nodeid: case.outcome for nodeid, case in cases.items()} == plain.outcomes
    # pytest's final counts are the items' tallies (double counts and subtests included).
    assert plain.counts == pytest_counts([*cases.values(), *suite.precollected])
    assert output, "pytest's own output reaches on_output"

    def case(name: str) -> Any:
        return cases[f"{OUTCOMES}::{name}"]

    assert case("test_fails_with_message").message == "AssertionError: the answer is off by one"
    assert "context printed before failing" in case("test_prints_then_fails").longrepr
    assert case("test_skipped_by_marker").message == "skipped by marker"
    assert case("test_xfail_failing").message == "known bug"
    teardown = case("test_error_in_fixture_teardown")
    assert teardown.message == "error in teardown: RuntimeError: fixture teardown exploded"
    assert "fixture teardown exploded" in teardown.longrepr
    assert case("test_passes").duration > 0


async def test_session_reports_unknown_nodeids(sessions: Callable[..., PytestSession]) -> None:
    unknown = f"{OUTCOMES}::test_does_not_exist"
    result = await sessions().run([unknown, f"{OUTCOMES}::test_passes"], timeout=60)
    assert result.category is None
    assert outcomes(result) == {unknown: "error", f"{OUTCOMES}::test_passes": "passed"}
    assert result.cases[0].message == f"not collected: {unknown}"


async def test_crash_keeps_earlier_results_and_restarts(
    sessions: Callable[..., PytestSession],
) -> None:
    before, crash, after = (
        f"{CRASH_FILE}::{name}"
        for name in ("test_before_crash", "test_exits_process", "test_after_crash")
    )
    session = sessions(args=(CRASH,))

    result = await session.run([before, crash, after], timeout=60)

    assert result.category == "infrastructure"
    assert outcomes(result) == {before: "passed", crash: "error", after: "error"}
    assert result.cases[1].message == "pytest process exited with code 3"
    assert result.cases[2].message.startswith("not run: pytest process exited with code 3")
    assert result.message == f"pytest process exited with code 3 while running {crash}"
    assert not session.alive

    again = await session.run([before, after], timeout=60)
    assert (again.category, outcomes(again)) == (None, {before: "passed", after: "passed"})


async def test_timeout_kills_the_process_group(sessions: Callable[..., PytestSession]) -> None:
    quick, spawns, sleeps = (
        f"{HANG_FILE}::{name}" for name in ("test_quick", "test_spawns_and_sleeps", "test_sleeps")
    )
    session = sessions(args=(CRASH,))
    assert (await session.run([quick], timeout=60)).category is None  # started and collected
    pid = session.pid
    assert pid is not None

    running = asyncio.create_task(session.run([quick, spawns, sleeps], timeout=2))
    [grandchild] = await eventually_async(lambda: psutil.Process(pid).children(recursive=True))
    result = await running

    assert result.category == "timeout"
    assert outcomes(result) == {quick: "passed", spawns: "error", sleeps: "error"}
    assert result.cases[1].message == "timeout after 2s"
    assert result.cases[2].message == f"not run: timeout after 2s while running {spawns}"
    await eventually_async(lambda: not running_process(pid) and not running_process(grandchild.pid))
    assert (await session.run([quick], timeout=60)).category is None


async def test_cancelled_run_kills_the_child(sessions: Callable[..., PytestSession]) -> None:
    session = sessions(args=(CRASH,))
    running = asyncio.create_task(session.run([f"{HANG_FILE}::test_spawns_and_sleeps"], 60))
    pid = await eventually_async(lambda: session.pid)
    [grandchild] = await eventually_async(lambda: psutil.Process(pid).children(recursive=True))
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert not session.alive
    await eventually_async(lambda: not running_process(pid) and not running_process(grandchild.pid))


async def test_broken_conftest_is_an_environment_failure(
    tmp_path: Path, sessions: Callable[..., PytestSession]
) -> None:
    write_project(
        tmp_path,
        {"conftest.py": "import no_such_module_for_dtf\n", "test_a.py": "def test_a(): pass\n"},
    )
    result = await sessions(root=tmp_path, args=()).run(["test_a.py::test_a"], timeout=60)
    assert result.category == "environment"
    assert "no_such_module_for_dtf" in result.message
    [case] = result.cases
    assert case.outcome == "error"
    assert "no_such_module_for_dtf" in case.message
    assert "no_such_module_for_dtf" in case.longrepr


async def test_unimportable_module_is_an_environment_failure(
    tmp_path: Path, sessions: Callable[..., PytestSession]
) -> None:
    write_project(
        tmp_path,
        {
            "test_ok.py": "def test_ok(): pass\n",
            "test_needs.py": "import no_such_module_for_dtf\n\ndef test_x(): pass\n",
        },
    )
    session = sessions(root=tmp_path, args=())
    result = await session.run(["test_needs.py::test_x", "test_ok.py::test_ok"], timeout=60)
    assert result.category == "environment"
    assert outcomes(result) == {"test_needs.py::test_x": "error", "test_ok.py::test_ok": "passed"}
    assert "No module named 'no_such_module_for_dtf'" in result.cases[0].message
    assert "test_needs.py" in result.message


def running_process(pid: int) -> bool:
    """Whether `pid` is a live process (a zombie awaiting its reaper counts as gone)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_missing_python_is_an_environment_failure(
    sessions: Callable[..., PytestSession],
) -> None:
    session = sessions(python="/nonexistent/python3")
    result = await session.run([f"{OUTCOMES}::test_passes"], timeout=60)
    assert result.category == "environment"
    assert result.message.startswith("cannot start /nonexistent/python3")
    assert [case.outcome for case in result.cases] == ["error"]


def test_long_failure_text_keeps_head_and_tail() -> None:
    text = "HEAD" + "x" * 20_000 + "TAIL"
    cut = truncate_middle(text)
    assert len(cut) <= LONGREPR_LIMIT
    assert cut.startswith("HEAD") and cut.endswith("TAIL")
    assert "characters cut" in cut
    assert truncate_middle("short") == "short"


def test_spelt_out_exit_codes_are_pytests() -> None:
    from dtf.runner import collect as collect_module

    assert collect_module._OK == pytest.ExitCode.OK
    assert collect_module._INTERRUPTED == pytest.ExitCode.INTERRUPTED
    assert collect_module._USAGE_ERROR == pytest.ExitCode.USAGE_ERROR
    assert collect_module._NO_TESTS_COLLECTED == pytest.ExitCode.NO_TESTS_COLLECTED


def test_summary_of_a_failure_keeps_its_cause() -> None:
    from dtf.runner.child.failure_text import summarize

    internal = (
        "INTERNALERROR> Traceback (most recent call last):\n"
        'INTERNALERROR>   File "/x/_pytest/main.py", line 1, in wrap_session\n'
        "INTERNALERROR>     config._do_configure()\n"
        "INTERNALERROR> pytest.PytestDeprecationWarning: the option is unset.\n"
        "INTERNALERROR> The scope will default to the fixture scope.\n"
        "INTERNALERROR>   warnings.warn(PytestDeprecationWarning(UNSET))\n"
    )
    assert summarize(internal) == "pytest.PytestDeprecationWarning: the option is unset."
    long_context = (
        f"ImportError while loading conftest '/{'deep/' * 80}conftest.py'.\n"
        "conftest.py:1: in <module>\n    import foo\n"
        "E   ModuleNotFoundError: No module named 'foo'\n"
    )
    line = summarize(long_context)
    assert len(line) <= 300 and line.startswith("ImportError while loading conftest '/deep")
    assert line.endswith("... ModuleNotFoundError: No module named 'foo'")


def test_the_childs_case_mirrors_the_catalogues() -> None:
    """`dtf_child` cannot import `events` (the project may have its own): its `WireCase`
    copies `CaseResult`'s fields instead, and must not drift from them."""
    import dataclasses

    from dtf.runner.child.wire import OUTCOMES, WireCase
    from dtf.runner.collect import case_result
    from events.catalogue import CaseResult, Outcome

    wire_fields = {f.name: f.type for f in dataclasses.fields(WireCase)}
    assert set(wire_fields) <= set(CaseResult.__struct_fields__)
    assert set(typing.get_args(Outcome)) == OUTCOMES
    full = WireCase("a.py::t", "failed", 1.5, "boom", "trace", {"failed": 1, "passed": 1})
    back = case_result(WireCase.from_json(json.loads(json.dumps(full.to_json()))))
    assert {name: getattr(back, name) for name in wire_fields} == dataclasses.asdict(full)
