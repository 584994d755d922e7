"""Quarantine patterns, failure locations and GitHub's workflow-command escaping."""

from __future__ import annotations

from pathlib import Path

from dtf.ci import github
from dtf.ci.locations import location
from dtf.ci.providers import CiContext
from dtf.ci.result import CiResult
from dtf.core import quarantine
from events.catalogue import CaseResult


def test_quarantine_patterns() -> None:
    node = "tests/gpu/test_a.py::TestX::test_y[3]"
    covering = [node, "tests/gpu/test_a.py::TestX::test_y", "tests/gpu/test_a.py::TestX"]
    covering += ["tests/gpu/test_a.py", "tests/gpu", "tests/gpu/", "*::test_y*", "tests/*"]
    for pattern in covering:
        assert quarantine.matches(node, [pattern]), pattern
    for pattern in ("tests/gpu/test_a.py::TestX::test_", "tests/gp", "test_a.py", "*::test_z"):
        assert not quarantine.matches(node, [pattern]), pattern
    assert quarantine.parse_file("# known\ntests/a.py::t  # flaky on arm\n\n  b.py\n") == [
        "tests/a.py::t",
        "b.py",
    ]


def test_quarantine_forgives_failures_only() -> None:
    cases = [
        CaseResult("a.py::t1", "failed"),
        CaseResult("a.py::t2", "passed"),
        CaseResult("b.py::t", "error"),
    ]
    assert quarantine.forgiven(cases, ["a.py"]) == [cases[0]]
    assert quarantine.forgiven(cases, []) == []


def test_location_is_the_last_traceback_entry_in_the_test_file() -> None:
    longrepr = (
        "tests/test_a.py:10: in test_x\n    helper()\n"
        "tests/helpers.py:3: in helper\n    assert False\nE   AssertionError\n"
        "/ci/checkout/tests/test_a.py:12: AssertionError\n"
    )
    assert location(CaseResult("tests/test_a.py::test_x[1]", "failed", longrepr=longrepr)) == (
        "tests/test_a.py",
        12,
    )
    assert location(CaseResult("tests/test_a.py::test_x", "error", longrepr="boom")) == (
        "tests/test_a.py",
        None,
    )


def test_workflow_command_escaping() -> None:
    assert github.command("error", "50% done\r\nnext", file="a,b.py", line=3, title="t::x") == (
        "::error file=a%2Cb.py,line=3,title=t%3A%3Ax::50%25 done%0D%0Anext"
    )
    assert github.command("notice", "plain") == "::notice::plain"
    assert github.command("warning", "m", file="", line=None) == "::warning::m"


def test_annotations_stop_at_the_limit_with_a_notice() -> None:
    cases = tuple(CaseResult(f"t.py::test_{i}", "failed", message="no") for i in range(60))
    lines = github.annotation_lines(CiResult(CiContext("github"), "r", cases, 1.0, 1))
    assert len(lines) == github.MAX_ANNOTATIONS + 1
    assert lines[-1] == "::notice::10 more annotation(s) left out; see the step summary"


def test_quarantine_from_pyproject_and_files(tmp_path: Path) -> None:
    import pytest

    from dtf.client.config import load_settings, quarantine_patterns
    from dtf.errors import ConfigError

    (tmp_path / "pyproject.toml").write_text(
        '[tool.dtf]\nquarantine = ["a.py::t"]\nquarantine-file = "q.txt"\n'
    )
    (tmp_path / "q.txt").write_text("b.py  # flaky on arm\n")
    extra = tmp_path / "more.txt"
    extra.write_text("c.py\n")
    sub = tmp_path / "sub"
    sub.mkdir()  # the file is named relative to the pyproject.toml, wherever dtf starts
    settings = load_settings(sub)
    assert quarantine_patterns(settings, extra) == ["a.py::t", "b.py", "c.py"]
    with pytest.raises(ConfigError, match=r"cannot read the quarantine file .*missing\.txt"):
        quarantine_patterns(settings, tmp_path / "missing.txt")
