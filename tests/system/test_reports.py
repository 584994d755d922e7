"""The end-of-run presentation checked against pytest itself.

A small suite with known outcomes is written to a temporary directory and run with plain
`python -m pytest`; its exit code, final line and JUnit XML are the reference that
`dtf.core.outcomes` and `dtf.client.reports` must reproduce from the equivalent `CaseResult` values.
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
from _pytest._io.terminalwriter import TerminalWriter
from rich.console import Console
from rich.text import Text

from dtf.client.reports import junit_names, read_json, write_json, write_junit_xml
from dtf.client.summary import collection_interrupted, main_color, render_summary, rule
from dtf.core.outcomes import count, exit_code, summary_line
from events.catalogue import CaseResult, Outcome
from tests.support.plain_pytest import summary_sections

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

# What a dtf run of MIXED_SUITE records: the same outcomes pytest reports for it, with the
# messages workers send.
MIXED_CASES = (
    CaseResult("pkg/test_mod.py::test_pass", "passed", 0.001),
    CaseResult(
        "pkg/test_mod.py::test_fail",
        "failed",
        0.52,
        "assert 1 == 2",
        "def test_fail():\n>       assert 1 == 2\nE       assert 1 == 2",
    ),
    CaseResult("pkg/test_mod.py::test_skip", "skipped", 0.0, "not here"),
    CaseResult("pkg/test_mod.py::test_xfail", "xfailed", 0.02, "known bug"),
    CaseResult("pkg/test_mod.py::test_xpass", "xpassed", 0.03, "fixed now"),
    CaseResult(
        "pkg/test_mod.py::test_error",
        "error",
        0.1,
        "error in setup: RuntimeError: fixture broke",
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
        "tally": {},
    }
    assert os.listdir(path.parent) == ["run.json"]


def test_json_replaces_an_existing_report(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_text("stale")

    write_json(path, "run-2", [], {}, 0.0, 5, {})

    assert read_json(path).exit_code == 5


# --- terminal summary -----------------------------------------------------------------


@pytest.fixture(autouse=True)
def no_pytest_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The summary reads pytest's options from the directory and environment: none of them."""
    monkeypatch.chdir(tmp_path)
    for name in ("PYTEST_ADDOPTS", "CI", "BUILD_NUMBER"):
        monkeypatch.delenv(name, raising=False)


def render(cases: Iterable[CaseResult], width: int = 100, **kwargs: Any) -> str:
    out = io.StringIO()
    render_summary(Console(file=out, width=width), cases, **kwargs)
    return out.getvalue()


def short_lines(text: str) -> list[str]:
    return summary_sections(text).short


class LocatedCase(CaseResult, frozen=True):
    """A case as a worker would send it once it says where a skip happened (issue #8)."""

    skip_location: str = ""


@pytest.fixture(scope="module")
def mixed_terminal(tmp_path_factory: pytest.TempPathFactory) -> str:
    """Plain pytest's output for MIXED_SUITE with -ra, 100 columns wide."""
    root = tmp_path_factory.mktemp("mixed-ra")
    (root / "pkg").mkdir()
    (root / "pkg" / "test_mod.py").write_text(textwrap.dedent(MIXED_SUITE))
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "100"}
    for name in ("PYTEST_ADDOPTS", "CI", "BUILD_NUMBER"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-ra", "-p", "no:cacheprovider"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return done.stdout


def test_render_summary_matches_plain_pytest_with_ra(mixed_terminal: str) -> None:
    plain = summary_sections(mixed_terminal)
    skip_line = 1 + textwrap.dedent(MIXED_SUITE).splitlines().index('    pytest.skip("not here")')
    located = [
        LocatedCase(
            c.nodeid, c.outcome, c.duration, c.message, skip_location=f"pkg/test_mod.py:{skip_line}"
        )
        if c.outcome == "skipped"
        else c
        for c in MIXED_CASES
    ]

    ours = summary_sections(render(located, seconds=1.0, pytest_args=["-ra"]))

    assert ours.rules == plain.rules  # ERRORS, FAILURES, XPASSES, short test summary info
    assert ours.titles == plain.titles == ["ERROR at setup of test_error", "test_fail"]
    assert ours.short == plain.short
    assert ours.final == plain.final
    # Without a location a skip is folded by its test's file, with no line number.
    unlocated = short_lines(render(MIXED_CASES, seconds=1.0, pytest_args=["-ra"]))
    assert unlocated[0] == "SKIPPED [1] pkg/test_mod.py: not here"
    assert unlocated[1:] == plain.short[1:]


def test_collection_errors_render_like_plain_pytest(tmp_path: Path) -> None:
    """Given pytest's own crash message: none for a module that cannot be imported.

    (Workers still send a summary of the traceback as the message; see issue #8.)
    """
    (tmp_path / "test_broken.py").write_text("import nonexistent_module_for_dtf\n")
    env = {**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", "COLUMNS": "100"}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    error = CaseResult("test_broken.py", "error", 0.0, "", "ImportError while importing...")

    text = render([error], seconds=0.0, interrupted=collection_interrupted(1))

    ours, plain = summary_sections(text), summary_sections(done.stdout)
    assert (ours.rules, ours.titles, ours.short) == (plain.rules, plain.titles, plain.short)
    assert ours.titles == ["ERROR collecting test_broken.py"]
    assert ours.final == plain.final == "1 error"
    stopped = [line for line in text.splitlines() if line.startswith("!")]
    assert stopped == [line for line in done.stdout.splitlines() if line.startswith("!")]
    assert stopped[0].strip("! ") == "Interrupted: 1 error during collection"


def test_render_summary_has_pytest_sections_in_order() -> None:
    text = render(MIXED_CASES, seconds=1.234)

    lines = text.splitlines()
    rules = [line.strip("= ") for line in lines if line.startswith("=")]
    assert rules == [
        "ERRORS",
        "FAILURES",
        "short test summary info",
        "1 failed, 3 passed, 1 skipped, 1 xfailed, 1 xpassed, 1 error in 1.23s",
    ]
    assert all(len(line) == 100 for line in lines if line.startswith(("=", "_")))
    assert "_ test_fail _" in text
    assert "_ ERROR at setup of test_error _" in text
    assert ">       assert 1 == 2" in text
    # pytest's default -r is "fE": failures first, then errors, without the phase prefix.
    assert short_lines(text) == [
        "FAILED pkg/test_mod.py::test_fail - assert 1 == 2",
        "ERROR pkg/test_mod.py::test_error - RuntimeError: fixture broke",
    ]
    assert "\x1b" not in text


def test_durations_print_only_when_asked_for() -> None:
    def durations_rules(**kwargs: Any) -> list[str]:
        return [
            r
            for r in summary_sections(render(MIXED_CASES, seconds=1.0, **kwargs)).rules
            if "durations" in r
        ]

    assert durations_rules() == []
    assert durations_rules(slowest=-1, pytest_args=["--durations=2"]) == []
    assert durations_rules(slowest=3) == [f"{' slowest 3 durations ':=^100}"]
    assert durations_rules(pytest_args=["--durations=2"]) == [f"{' slowest 2 durations ':=^100}"]
    # dtf's own --durations wins over pytest's.
    assert durations_rules(slowest=0, pytest_args=["--durations=2"]) == [
        f"{' slowest durations ':=^100}"
    ]


def test_durations_come_from_the_projects_addopts(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\naddopts = --durations=1\n")

    assert "slowest 1 durations" in render(MIXED_CASES, seconds=1.0)


def test_render_summary_durations_are_slowest_first_and_hide_fast_ones() -> None:
    lines = render(MIXED_CASES, seconds=1.0, slowest=0).splitlines()

    start = lines.index(next(line for line in lines if "slowest durations" in line))
    assert lines[start + 1 : start + 6] == [
        "0.52s call     pkg/test_mod.py::test_fail",
        "0.30s call     pkg/test_mod.py::TestGroup::test_param[a.b::c]",
        "0.20s call     pkg/test_mod.py::TestGroup::test_param[one]",
        "0.10s call     pkg/test_mod.py::test_error",
        "0.03s call     pkg/test_mod.py::test_xpass",
    ]
    assert "(2 durations < 0.005s hidden.  Use -vv to show these durations.)" in lines
    everything = render(MIXED_CASES, seconds=1.0, slowest=0, pytest_args=["-vv"])
    assert "0.00s call     pkg/test_mod.py::test_skip" in everything
    shown = render(MIXED_CASES, seconds=1.0, slowest=0, pytest_args=["--durations-min=0.25"])
    assert "(6 durations < 0.25s hidden.)" in shown.splitlines()


def test_no_durations_without_test_results() -> None:
    error = CaseResult("test_bad.py", "error", 0.0, "ImportError: no module x", "Traceback...")

    text = render([error], seconds=0.0, slowest=0)

    assert "durations" not in text
    assert "_ ERROR collecting test_bad.py _" in text


@pytest.mark.parametrize(
    ("message", "title", "short"),
    [
        (
            "error in setup: RuntimeError: broke",
            "ERROR at setup of TestX.test_y[1]",
            "ERROR t.py::TestX::test_y[1] - RuntimeError: broke",
        ),
        (
            "error in teardown: ValueError: late",
            "ERROR at teardown of TestX.test_y[1]",
            "ERROR t.py::TestX::test_y[1] - ValueError: late",
        ),
        (
            "worker lost while running it",
            "ERROR TestX.test_y[1]",
            "ERROR t.py::TestX::test_y[1] - worker lost while running it",
        ),
    ],
)
def test_error_titles_name_the_phase(message: str, title: str, short: str) -> None:
    text = render([CaseResult("t.py::TestX::test_y[1]", "error", 0.1, message)], seconds=0.1)

    assert summary_sections(text).titles == [title]
    assert short_lines(text) == [short]


def test_report_chars_choose_and_order_the_short_summary() -> None:
    def words(*args: str, verbose: bool = False) -> list[str]:
        text = render(MIXED_CASES, seconds=1.0, pytest_args=args, verbose=verbose)
        return [line.split()[0] for line in short_lines(text)]

    assert words() == ["FAILED", "ERROR"]
    assert words("-rEf") == ["ERROR", "FAILED"]
    assert words("-ra") == ["SKIPPED", "XFAIL", "XPASS", "ERROR", "FAILED"]
    assert words(verbose=True) == words("-ra")
    assert words("-rA") == ["PASSED"] * 3 + ["SKIPPED", "XFAIL", "XPASS", "ERROR", "FAILED"]
    assert words("-rN") == []
    assert words("-rs", "--no-summary") == []
    passes = render(MIXED_CASES, seconds=1.0, pytest_args=["-rA"])
    assert [r.strip("= ") for r in summary_sections(passes).rules][:4] == [
        "ERRORS",
        "FAILURES",
        "PASSES",
        "XPASSES",
    ]
    no_tb = render(MIXED_CASES, seconds=1.0, pytest_args=["--tb=no"])
    assert [r.strip("= ") for r in summary_sections(no_tb).rules] == ["short test summary info"]


def test_skips_fold_like_pytest_unless_told_not_to() -> None:
    cases = [
        CaseResult("test_m.py", "skipped", 0.0, "module skipped"),
        CaseResult("test_a.py::test_p[1]", "skipped", 0.0, "not on this OS"),
        CaseResult("test_a.py::test_p[2]", "skipped", 0.0, "not on this OS"),
        LocatedCase("test_b.py::test_q", "skipped", 0.0, "later", skip_location="helpers.py:7"),
        CaseResult("test_x.py::test_f", "xfailed", 0.0, "xfailed"),  # no reason given
        CaseResult("test_x.py::test_g", "xfailed", 0.0, "[NOTRUN] would hang"),
        CaseResult("test_x.py::test_h", "xpassed", 0.0, "xpassed"),
    ]

    assert short_lines(render(cases, seconds=0.1, pytest_args=["-ra"])) == [
        "SKIPPED [1] test_m.py: module skipped",
        "SKIPPED [2] test_a.py: not on this OS",
        "SKIPPED [1] helpers.py:7: later",
        "XFAIL test_x.py::test_f",
        "XFAIL at setup of test_x.py::test_g - [NOTRUN] would hang",
        "XPASS test_x.py::test_h",
    ]
    unfolded = render(cases[:3], seconds=0.1, pytest_args=["-rs", "--no-fold-skipped"])
    assert short_lines(unfolded) == [
        "SKIPPED test_m.py - Skipped: module skipped",
        "SKIPPED test_a.py::test_p[1] - Skipped: not on this OS",
        "SKIPPED test_a.py::test_p[2] - Skipped: not on this OS",
    ]


def test_render_summary_trims_long_messages_to_the_width(monkeypatch: pytest.MonkeyPatch) -> None:
    case = CaseResult("t.py::test_long", "failed", 0.1, "x" * 300 + "\nsecond line")

    line = short_lines(render([case], seconds=0.1))[0]
    assert len(line) == 100
    assert line.endswith("x...")
    assert short_lines(render([case], width=20, seconds=0.1)) == ["FAILED t.py::test_long"]
    # pytest prints messages whole on CI and with -vv, unless told to keep them short.
    assert short_lines(render([case], seconds=0.1, pytest_args=["-vv"]))[0].endswith("x")
    monkeypatch.setenv("CI", "1")
    assert len(short_lines(render([case], seconds=0.1))[0]) > 300
    forced = render([case], seconds=0.1, pytest_args=["--force-short-summary"])
    assert len(short_lines(forced)[0]) == 100


@pytest.mark.parametrize("width", [40, 99, 100])
@pytest.mark.parametrize("title", ["ERRORS", "odd title", "x" * 120])
def test_rules_are_split_as_pytest_splits_them(width: int, title: str) -> None:
    out, expected = io.StringIO(), io.StringIO()
    writer = TerminalWriter(expected)
    writer.fullwidth = width

    rule(Console(file=out, width=width), Text(title), "_")

    writer.sep("_", title)
    assert out.getvalue() == expected.getvalue()


def test_quiet_final_line_has_no_rules() -> None:
    case = CaseResult("t.py::test_a", "passed", 0.01)

    assert render([case], seconds=0.1, pytest_args=["-q"]).splitlines() == ["1 passed in 0.10s"]
    assert render([case], seconds=0.1, pytest_args=["-qq"]) == ""


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
