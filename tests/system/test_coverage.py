"""`dtf run --cov` against plain `pytest --cov` (pytest-cov) of the same suite: the combined
total within 0.1 %, and file by file the same lines run, on embedded workers and on real
workers that run the code from bundles in checkouts of their own (so paths are mapped)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from tests.support.cluster import Cluster

DTF = [sys.executable, "-m", "dtf"]
FILES = {
    "pkg/__init__.py": "",
    "pkg/calc.py": """
        def add(a, b):
            return a + b


        def div(a, b):
            if b == 0:
                raise ZeroDivisionError("b is zero")
            return a / b


        def never(x):
            y = x * 2
            return y
    """,
    "pkg/text.py": """
        def shout(s):
            return s.upper() + "!"


        def whisper(s):
            if not s:
                return ""
            return s.lower()
    """,
    "tests/test_calc.py": """
        from pkg.calc import add, div

        def test_add():
            assert add(1, 2) == 3

        def test_div():
            assert div(4, 2) == 2
    """,
    "tests/test_text.py": """
        from pkg.text import shout, whisper

        def test_shout():
            assert shout("a") == "A!"

        def test_whisper_empty():
            assert whisper("") == ""
    """,
    "tests/test_zero.py": """
        import pytest
        from pkg.calc import div

        def test_div_zero():
            with pytest.raises(ZeroDivisionError):
                div(1, 0)
    """,
}


@pytest.fixture
def cov_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    for name, text in FILES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text).lstrip())
    return root


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 180):
    # No DTF_SERVER from outside: the embedded run is what is asked for unless --server says.
    base = {k: v for k, v in os.environ.items() if k not in ("DTF_SERVER", "COVERAGE_RCFILE")}
    done = subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env={**base, **(env or {})}
    )
    return done


def xml_lines(path: Path) -> tuple[float, dict[str, dict[int, int]]]:
    """A Cobertura report's total line rate, and each file's lines with their hit flags."""
    root = ET.parse(path).getroot()
    files = {}
    for cls in root.iter("class"):
        hits = {int(line.get("number")): int(line.get("hits")) for line in cls.iter("line")}
        files[cls.get("filename")] = hits
    return float(root.get("line-rate")), files


def plain_reference(project: Path) -> tuple[float, dict[str, dict[int, int]]]:
    done = run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--cov=pkg",
         "--cov-report=xml:plain.xml"],
        project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return xml_lines(project / "plain.xml")


def assert_same_coverage(project: Path, dtf_xml: Path) -> None:
    plain_rate, plain_files = plain_reference(project)
    rate, files = xml_lines(dtf_xml)
    assert abs(rate - plain_rate) <= 0.001, (rate, plain_rate)
    assert files == plain_files  # line by line: nothing lost, nothing mapped to the wrong file
    assert 0 < rate < 1  # the suite leaves some lines unrun: a real comparison


def test_embedded_run_matches_pytest_cov(cov_project: Path) -> None:
    done = run(
        [*DTF, "run", "--no-progress", "-n", "2", "--split", "test", "--cov=pkg",
         "--cov-report", "term-missing", "--cov-report", "xml:dtf.xml", "--cov-report", "html"],
        cov_project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "5 passed" in done.stdout
    assert_same_coverage(cov_project, cov_project / "dtf.xml")
    # The terminal table, as pytest-cov's term-missing prints it.
    lines = done.stdout.splitlines()
    row = next(line for line in lines if line.startswith("pkg/calc.py"))
    assert row.split()[-2:] == ["78%", "12-13"]
    assert any(line.startswith("TOTAL") for line in lines)
    assert "Coverage XML written to file dtf.xml" in done.stdout
    assert (cov_project / "htmlcov" / "index.html").exists()
    # The combined data stays for `coverage report`, as pytest-cov leaves it.
    again = run([sys.executable, "-m", "coverage", "report"], cov_project)
    assert again.returncode == 0 and "pkg/text.py" in again.stdout, again.stderr


def test_remote_workers_bundles_and_branch_coverage(cluster: Cluster, cov_project: Path) -> None:
    """Two workers that run the code from bundles in their own caches; branch coverage from
    the project's [tool.coverage] configuration, as pytest-cov reads it."""
    (cov_project / "pyproject.toml").write_text("[tool.coverage.run]\nbranch = true\n")
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    cluster.worker("w2")
    done = run(
        [*DTF, "run", "--no-progress", "--split", "test", "--server", cluster.url, "--cov=pkg",
         "--cov-report", "xml:dtf.xml"],
        cov_project,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    rate, files = xml_lines(cov_project / "dtf.xml")
    # Named relative to the source (pkg), as pytest-cov's report names them.
    assert set(files) == {"__init__.py", "calc.py", "text.py"}
    branch_rate = float(ET.parse(cov_project / "dtf.xml").getroot().get("branch-rate"))
    plain_rate, plain_files = plain_reference(cov_project)
    plain_branches = float(ET.parse(cov_project / "plain.xml").getroot().get("branch-rate"))
    assert abs(rate - plain_rate) <= 0.001 and files == plain_files
    assert abs(branch_rate - plain_branches) <= 0.001 and 0 < branch_rate < 1


def test_a_crashed_session_keeps_the_other_batches(cov_project: Path) -> None:
    """A test that kills its pytest process costs the coverage of its batch (saved at batch
    ends), nothing else: the batches before it, in the process that died, and after it, in
    the process that replaced it, are all in the report."""
    (cov_project / "tests" / "test_text.py").write_text(
        textwrap.dedent(
            """
            import os
            from pkg.text import shout, whisper

            def test_shout():
                assert shout("a") == "A!"

            def test_crash():
                os._exit(3)

            def test_whisper_empty():
                assert whisper("") == ""
            """
        )
    )
    done = run(
        [*DTF, "run", "--no-progress", "-n", "1", "--max-attempts", "1", "--cov=pkg",
         "--cov-report", "xml:dtf.xml"],
        cov_project,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    _, files = xml_lines(cov_project / "dtf.xml")
    # One slot runs the three files in turn: add (test_calc) and the raise (test_zero) ran
    # in different batches, one of them before the crash and one after it.
    assert files["calc.py"] == {1: 1, 2: 1, 5: 1, 6: 1, 7: 1, 8: 1, 11: 1, 12: 0, 13: 0}


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--cov-report", "xml"], "--cov-report needs --cov"),
        (["--cov", "--cov-report", "pdf"], "--cov-report must be one of term, term-missing"),
        (["--cov", "--cov-report", "term:out.txt"], "--cov-report term writes to the terminal"),
        (["--cov", "--command", "true"], "--cov measures pytest runs, not --command"),
    ],
)
def test_bad_coverage_options_give_one_line(
    cov_project: Path, args: list[str], expected: str
) -> None:
    done = run([*DTF, "run", *args], cov_project, timeout=60)
    assert done.returncode == 2
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith(f"dtf: error: {expected}"), line
