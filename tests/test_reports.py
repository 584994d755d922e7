"""The end-of-run presentation checked against pytest itself.

A small suite with known outcomes is written to a temporary directory and run with plain
`python -m pytest`; its exit code, final line and JUnit XML are the reference that
`dtf.outcomes` and `dtf.reports` must reproduce from the equivalent `CaseResult` values.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from dtf.outcomes import count, exit_code, summary_line
from dtf.reports import junit_names, read_json, write_json, write_junit_xml
from dtf.summary import main_color, render_summary
from events.catalogue import CaseResult, Outcome

MIXED_SUITE = """
    import pytest

    @pytest.fixture
    def broken():
        raise RuntimeError("fixture broke")

    def test_pass():
        pass

    def test_fail():
        assert 1 == 2

    def test_skip():
        pytest.skip("not here")

    @pytest.mark.xfail(reason="known bug")
    def test_xfail():
        assert False

    @pytest.mark.xfail(reason="fixed now")
    def test_xpass():
        pass

    def test_error(broken):
        pass

    class TestGroup:
        @pytest.mark.parametrize("n", [1, 2], ids=["one", "a.b::c"])
        def test_param(self, n):
            assert n < 3
"""

# What a dtf run of MIXED_SUITE records: the same outcomes pytest reports for it.
MIXED_CASES = (
    CaseResult("pkg/test_mod.py::test_pass", "passed", 0.001),
    CaseResult(
        "pkg/test_mod.py::test_fail",
        "failed",
        0.52,
        "assert 1 == 2",
        "def test_fail():\n>       assert 1 == 2\nE       assert 1 == 2",
    ),
    CaseResult("pkg/test_mod.py::test_skip", "skipped", 0.0, "Skipped: not here"),
    CaseResult("pkg/test_mod.py::test_xfail", "xfailed", 0.02, "known bug"),
    CaseResult("pkg/test_mod.py::test_xpass", "xpassed", 0.03, "fixed now"),
    CaseResult(
        "pkg/test_mod.py::test_error",
        "error",
        0.1,
        "RuntimeError: fixture broke",
        'E       RuntimeError: fixture broke\x1b[0m \u0007 <&"',
    ),
    CaseResult("pkg/test_mod.py::TestGroup::test_param[one]", "passed", 0.2),
    CaseResult("pkg/test_mod.py::TestGroup::test_param[a.b::c]", "passed", 0.3),
)


@dataclass(frozen=True)
class PytestRun:
    """What plain pytest said about a suite: exit code, last line and its JUnit XML."""

    returncode: int
    last_line: str
    junit: ET.Element


def run_pytest(root: Path, files: dict[str, str]) -> PytestRun:
    for name, source in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(source))
    junit = root / "pytest-junit.xml"
    # Plugins stay out so that the output is pytest's own.
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "200"}
    env.pop("PYTEST_ADDOPTS", None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junit-xml={junit}"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    last_line = done.stdout.strip().splitlines()[-1]
    return PytestRun(done.returncode, last_line, ET.parse(junit).getroot())


def counts_part(line: str) -> str:
    """A final line without its duration: "1 failed, 2 passed in 0.12s" -> "1 failed, 2 passed"."""
    return re.sub(r" in \d+\.\d\ds( \(.*\))?$", "", line.strip("= "))


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory: pytest.TempPathFactory) -> PytestRun:
    return run_pytest(tmp_path_factory.mktemp("mixed"), {"pkg/test_mod.py": MIXED_SUITE})


# --- outcomes -------------------------------------------------------------------------


def test_count_keeps_pytest_order_and_drops_zeros() -> None:
    counts = count(MIXED_CASES)

    assert list(counts.items()) == [
        ("failed", 1),
        ("passed", 3),
        ("skipped", 1),
        ("xfailed", 1),
        ("xpassed", 1),
        ("error", 1),
    ]
    assert count([CaseResult("a.py::t", "skipped")]) == {"skipped": 1}


@pytest.mark.parametrize(
    ("outcomes", "kwargs", "expected"),
    [
        (["passed", "skipped", "xfailed", "xpassed"], {}, pytest.ExitCode.OK),
        (["skipped"], {}, pytest.ExitCode.OK),
        (["passed", "failed"], {}, pytest.ExitCode.TESTS_FAILED),
        (["passed", "error"], {}, pytest.ExitCode.TESTS_FAILED),
        ([], {}, pytest.ExitCode.NO_TESTS_COLLECTED),
        (["passed"], {"interrupted": True}, pytest.ExitCode.INTERRUPTED),
        (["failed"], {"interrupted": True}, pytest.ExitCode.INTERRUPTED),
        ([], {"collection_errors": 1}, pytest.ExitCode.INTERRUPTED),
    ],
)
def test_exit_code_matches_pytest_exit_codes(
    outcomes: list[Outcome], kwargs: dict[str, Any], expected: pytest.ExitCode
) -> None:
    cases = [CaseResult(f"t.py::test_{i}", o) for i, o in enumerate(outcomes)]

    assert exit_code(cases, **kwargs) == expected


def test_summary_line_wording() -> None:
    counts = {"error": 2, "xpassed": 1, "passed": 10, "failed": 3, "xfailed": 1, "skipped": 2}

    assert summary_line(counts, 1.234) == (
        "3 failed, 10 passed, 2 skipped, 1 xfailed, 1 xpassed, 2 errors in 1.23s"
    )
    assert summary_line({"error": 1}, 0.5) == "1 error in 0.50s"
    assert summary_line({"passed": 1, "warnings": 1}, 0.5) == "1 passed, 1 warning in 0.50s"
    assert summary_line({}, 0.004) == "no tests ran in 0.00s"
    assert summary_line({"passed": 0}, 75.0) == "no tests ran in 75.00s (0:01:15)"


def test_mixed_suite_matches_plain_pytest(mixed_run: PytestRun) -> None:
    assert exit_code(MIXED_CASES) == mixed_run.returncode
    assert counts_part(summary_line(count(MIXED_CASES), 0.1)) == counts_part(mixed_run.last_line)


@pytest.mark.parametrize(
    ("files", "cases", "collection_errors"),
    [
        ({"test_ok.py": "def test_a(): pass\ndef test_b(): pass\n"}, ["passed", "passed"], 0),
        (
            {"test_skip.py": "import pytest\n@pytest.mark.skip\ndef test_a(): pass\n"},
            ["skipped"],
            0,
        ),
        ({"conftest.py": ""}, [], 0),
        ({"test_bad.py": "import nonexistent_module_for_dtf\n"}, ["error"], 1),
    ],
    ids=["all-passed", "only-skipped", "no-tests", "collection-error"],
)
def test_small_suites_match_plain_pytest(
    tmp_path: Path, files: dict[str, str], cases: list[Outcome], collection_errors: int
) -> None:
    pytest_run = run_pytest(tmp_path, files)
    results = [CaseResult(f"t.py::test_{i}", o) for i, o in enumerate(cases)]

    assert exit_code(results, collection_errors=collection_errors) == pytest_run.returncode
    assert counts_part(summary_line(count(results), 0.1)) == counts_part(pytest_run.last_line)


# --- JUnit XML ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("nodeid", "expected"),
    [
        ("tests/test_a.py::TestX::test_y[1]", ("tests.test_a.TestX", "test_y[1]")),
        ("test_a.py::test_b", ("test_a", "test_b")),
        ("a/b/test_c.py::T::U::test_d[x::y.z/w]", ("a.b.test_c.T.U", "test_d[x::y.z/w]")),
        ("tests/test_bad.py", ("", "tests.test_bad")),
    ],
)
def test_junit_names_follow_pytest(nodeid: str, expected: tuple[str, str]) -> None:
    assert junit_names(nodeid) == expected


def _suite_counts(root: ET.Element) -> dict[str, str]:
    suite = root.find("testsuite")
    assert suite is not None
    return {key: suite.attrib[key] for key in ("tests", "failures", "errors", "skipped")}


def _testcases(root: ET.Element) -> set[tuple[str, str]]:
    return {(tc.attrib["classname"], tc.attrib["name"]) for tc in root.iter("testcase")}


def _child_tags(root: ET.Element) -> list[tuple[str, str, str | None]]:
    return sorted(
        (tc.attrib["name"], child.tag, child.get("type"))
        for tc in root.iter("testcase")
        for child in tc
    )


def test_junit_xml_matches_what_pytest_writes(tmp_path: Path, mixed_run: PytestRun) -> None:
    path = tmp_path / "deep" / "er" / "junit.xml"

    write_junit_xml(path, MIXED_CASES, duration=1.5, hostname="ci-7", timestamp=1_700_000_000.0)

    ours = ET.parse(path).getroot()
    assert _suite_counts(ours) == _suite_counts(mixed_run.junit)
    assert _testcases(ours) == _testcases(mixed_run.junit)
    assert _child_tags(ours) == _child_tags(mixed_run.junit)
    assert ours.attrib["name"] == "dtf tests"
    suite = ours.find("testsuite")
    assert suite is not None
    assert suite.attrib["name"] == "dtf"
    assert suite.attrib["time"] == "1.500"
    assert suite.attrib["hostname"] == "ci-7"
    assert suite.attrib["timestamp"].startswith("2023-11-1")
    assert path.read_text().startswith('<?xml version="1.0" encoding="utf-8"?><testsuites')
    assert os.listdir(path.parent) == ["junit.xml"]


def test_junit_xml_children_carry_messages_and_text(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"

    write_junit_xml(path, MIXED_CASES, duration=0.0, timestamp=0.0)

    root = ET.parse(path).getroot()
    by_name = {tc.attrib["name"]: tc for tc in root.iter("testcase")}
    failure = by_name["test_fail"].find("failure")
    assert failure is not None
    assert failure.attrib["message"] == "assert 1 == 2"
    assert failure.text is not None and "assert 1 == 2" in failure.text
    error = by_name["test_error"].find("error")
    assert error is not None
    # Characters XML cannot hold are shown, not written raw.
    assert error.text == 'E       RuntimeError: fixture broke#x1B[0m #x07 <&"'
    skipped = by_name["test_skip"].find("skipped")
    assert skipped is not None
    assert (skipped.get("type"), skipped.get("message")) == ("pytest.skip", "not here")
    xfail = by_name["test_xfail"].find("skipped")
    assert xfail is not None
    assert (xfail.get("type"), xfail.get("message")) == ("pytest.xfail", "known bug")
    assert list(by_name["test_xpass"]) == []
    suite = root.find("testsuite")
    assert suite is not None
    assert "hostname" not in suite.attrib


# --- JSON -----------------------------------------------------------------------------


def test_json_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "out" / "run.json"
    counts = count(MIXED_CASES)

    write_json(path, "run-1", MIXED_CASES, counts, 2.5, 1, {"labels": {"ci": "yes"}})

    report = read_json(path)
    assert (report.version, report.run_id, report.exit_code, report.duration) == (
        1,
        "run-1",
        1,
        2.5,
    )
    assert report.counts == counts
    assert report.total == len(MIXED_CASES)
    assert report.extra == {"labels": {"ci": "yes"}}
    assert [
        CaseResult(c.nodeid, c.outcome, c.duration, c.message, c.longrepr) for c in report.cases
    ] == list(MIXED_CASES)
    raw = json.loads(path.read_text())
    assert list(raw) == [
        "version",
        "run_id",
        "exit_code",
        "duration",
        "counts",
        "total",
        "cases",
        "extra",
    ]
    # Every case field is present even when empty, so readers need no defaults.
    assert raw["cases"][0] == {
        "nodeid": "pkg/test_mod.py::test_pass",
        "outcome": "passed",
        "duration": 0.001,
        "message": "",
        "longrepr": "",
        "reruns": 0,
    }
    assert os.listdir(path.parent) == ["run.json"]


def test_json_replaces_an_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("stale")

    write_json(path, "run-2", [], {}, 0.0, 5, {})

    assert read_json(path).exit_code == 5


# --- terminal summary -----------------------------------------------------------------


def render(cases: Iterable[CaseResult], **kwargs: Any) -> str:
    out = io.StringIO()
    render_summary(Console(file=out, width=100), cases, **kwargs)
    return out.getvalue()


def test_render_summary_has_pytest_sections_in_order() -> None:
    text = render(MIXED_CASES, seconds=1.234)

    lines = text.splitlines()
    rules = [line.strip("= ") for line in lines if line.startswith("=")]
    assert rules == [
        "ERRORS",
        "FAILURES",
        "slowest 5 durations",
        "short test summary info",
        "1 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in 1.23s",
    ]
    assert all(len(line) == 100 for line in lines if line.startswith(("=", "_")))
    assert "_ test_fail _" in text
    assert "_ ERROR test_error _" in text
    assert ">       assert 1 == 2" in text
    assert "0.52s call     pkg/test_mod.py::test_fail" in text
    assert "FAILED pkg/test_mod.py::test_fail - assert 1 == 2" in text
    assert "ERROR pkg/test_mod.py::test_error - RuntimeError: fixture broke" in text
    assert "SKIPPED" not in text
    assert "\x1b" not in text


def test_render_summary_durations_are_slowest_first() -> None:
    lines = render(MIXED_CASES, seconds=1.0, slowest=2).splitlines()

    start = lines.index(next(line for line in lines if "slowest 2 durations" in line))
    assert lines[start + 1 : start + 3] == [
        "0.52s call     pkg/test_mod.py::test_fail",
        "0.30s call     pkg/test_mod.py::TestGroup::test_param[a.b::c]",
    ]


def test_render_summary_verbose_lists_every_kind_like_pytest_ra() -> None:
    text = render(MIXED_CASES, seconds=1.0, slowest=0, verbose=True)

    short = text.split("short test summary info")[1].splitlines()[1:-1]
    assert short == [
        "SKIPPED pkg/test_mod.py::test_skip - Skipped: not here",
        "XFAIL pkg/test_mod.py::test_xfail - known bug",
        "XPASS pkg/test_mod.py::test_xpass - fixed now",
        "ERROR pkg/test_mod.py::test_error - RuntimeError: fixture broke",
        "FAILED pkg/test_mod.py::test_fail - assert 1 == 2",
    ]
    assert "0.00s call     pkg/test_mod.py::test_skip" in text


def test_render_summary_trims_long_messages_to_the_width() -> None:
    case = CaseResult("t.py::test_long", "failed", 0.1, "x" * 300 + "\nsecond line")

    line = next(
        line for line in render([case], seconds=0.1).splitlines() if line.startswith("FAILED")
    )
    assert len(line) == 100
    assert line.endswith("x...")


def test_render_summary_without_cases() -> None:
    text = render([], seconds=0.0)

    assert text.splitlines() == [f"{' no tests ran in 0.00s ':=^100}"]


@pytest.mark.parametrize(
    ("counts", "color"),
    [
        ({"passed": 3}, "green"),
        ({"passed": 3, "skipped": 1, "xfailed": 1}, "green"),
        ({"passed": 3, "xpassed": 1}, "yellow"),
        ({"skipped": 2}, "yellow"),
        ({}, "yellow"),
        ({"passed": 3, "failed": 1}, "red"),
        ({"error": 1}, "red"),
    ],
)
def test_final_line_is_coloured_like_pytest(counts: dict[str, int], color: str) -> None:
    assert main_color(counts) == color


def test_final_line_colour_reaches_a_terminal() -> None:
    out = io.StringIO()
    console = Console(file=out, width=60, force_terminal=True, color_system="standard")

    render_summary(console, [CaseResult("t.py::test_a", "passed", 0.01)], seconds=0.1)

    assert "\x1b[32m" in out.getvalue()  # green
