"""`dtf run` end to end: the real CLI, an embedded or real nats-server, real worker processes."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from tests.support.paths import TESTS
from tests.support.plain_pytest import run_plain_pytest
from tests.support.polling import eventually

HERE = TESTS
SAMPLE = HERE / "sample_suite"
DTF = [sys.executable, "-m", "dtf"]


def dtf(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DTF, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture
def sample_project(tmp_path: Path) -> Path:
    project = tmp_path / "proj"
    shutil.copytree(SAMPLE, project)
    return project


def test_results_match_plain_pytest(sample_project: Path) -> None:
    """Every collected item once, with the outcome plain pytest gives it, on 2 workers."""
    result = dtf(
        "run",
        ".",
        "-n",
        "2",
        "--split",
        "test",
        "--json",
        "out.json",
        "--junit-xml",
        "out.xml",
        "--no-progress",
        # The reference runs with -v, and pytest's verbosity decides whether passed subtests
        # are counted: the same for both.
        "--",
        "-v",
        cwd=sample_project,
    )
    plain = run_plain_pytest(sample_project, ["."])
    assert result.returncode == 1, result.stderr  # the sample suite has failures, like pytest
    report = json.loads((sample_project / "out.json").read_text())
    ids = [c["nodeid"] for c in report["cases"]]
    assert len(ids) == len(set(ids)), "a test was reported twice"
    dtf_outcomes = {c["nodeid"]: c for c in report["cases"]}
    # Tests that need hardware this machine lacks are skipped with a reason, not run.
    unrunnable = {
        n
        for n, c in dtf_outcomes.items()
        if c["outcome"] == "skipped" and "does not have it" in c["message"]
    }
    assert unrunnable == {
        "test_requirements.py::test_needs_gpu",
        "test_requirements.py::TestNeedsDatabase::test_class_marker",
    }
    for nodeid, outcome in plain.outcomes.items():
        if nodeid not in unrunnable:
            assert dtf_outcomes[nodeid]["outcome"] == outcome, nodeid
    module_skips = set(dtf_outcomes) - set(plain.outcomes)
    assert module_skips == {"test_module_skip.py"}
    assert dtf_outcomes["test_module_skip.py"]["outcome"] == "skipped"
    # pytest's own final counts are what dtf's tallies add up to (its double counting of a
    # teardown error and its subtest counts included), where dtf ran the same tests.
    tallied: Counter[str] = Counter(plain.outcomes[n] for n in unrunnable)
    for nodeid, case in dtf_outcomes.items():
        if nodeid not in unrunnable:
            tallied.update(case["tally"] or {case["outcome"]: 1})
    assert plain.counts == dict(tallied)
    xml = (sample_project / "out.xml").read_text()
    assert xml.count("<testcase ") == len(ids)


def test_split_by_file_gives_the_same_outcomes(sample_project: Path) -> None:
    by_file = dtf("run", ".", "-n", "2", "--json", "a.json", "--no-progress", cwd=sample_project)
    by_test = dtf(
        "run",
        ".",
        "-n",
        "1",
        "--split",
        "test",
        "--json",
        "b.json",
        "--no-progress",
        cwd=sample_project,
    )
    assert by_file.returncode == by_test.returncode == 1
    assert outcomes(sample_project / "a.json") == outcomes(sample_project / "b.json")
    assert "passed" in by_file.stdout.splitlines()[-1]
    # As with pytest, no durations section unless --durations is given.
    assert "durations" not in by_file.stdout + by_test.stdout


def outcomes(report: Path) -> dict[str, str]:
    return {c["nodeid"]: c["outcome"] for c in json.loads(report.read_text())["cases"]}


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dtf: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


def test_unknown_path(tmp_path: Path) -> None:
    assert "path not found: nope" in one_line_error(dtf("run", "nope", cwd=tmp_path))


def test_unreachable_server(tmp_path: Path) -> None:
    result = dtf("run", ".", "--server", "nats://127.0.0.1:1", cwd=tmp_path, timeout=30)
    assert "cannot reach NATS" in one_line_error(result)
    status = dtf("status", "--server", "nats://127.0.0.1:1", cwd=tmp_path, timeout=30)
    assert "cannot reach NATS" in one_line_error(status)


def test_bad_config(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.dtf]\nworkers = "many"\n')
    assert "bad [tool.dtf]" in one_line_error(dtf("run", ".", cwd=tmp_path))
    (tmp_path / "pyproject.toml").write_text('[tool.dtf]\nservr = "nats://x:1"\n')
    assert "servr" in one_line_error(dtf("run", ".", cwd=tmp_path))
    (tmp_path / "pyproject.toml").write_text("[tool.dtf\n")
    assert "cannot read" in one_line_error(dtf("run", ".", cwd=tmp_path))
    (tmp_path / "pyproject.toml").unlink()
    assert "server URL" in one_line_error(dtf("run", ".", "--server", "localhost", cwd=tmp_path))


def test_collection_error_and_nothing_collected(tmp_path: Path) -> None:
    (tmp_path / "test_broken.py").write_text("def test_x(:\n")
    broken = dtf("run", ".", "-n", "1", cwd=tmp_path)
    assert broken.returncode == 2
    assert "error" in broken.stdout.lower() and "Traceback" not in broken.stderr
    assert "ERROR collecting test_broken.py" in broken.stdout
    assert "durations" not in broken.stdout
    (tmp_path / "test_broken.py").unlink()
    (tmp_path / "test_empty.py").write_text("X = 1\n")
    empty = dtf("run", ".", "-n", "1", cwd=tmp_path)
    assert empty.returncode == 5
    assert "no tests ran" in empty.stdout


def test_commands_record_metrics(tmp_path: Path) -> None:
    script = (
        "import json, os; json.dump({'ops_per_s': 42.0}, open(os.environ['DTF_RESULTS_FILE'], 'w'))"
    )
    result = dtf(
        "run",
        "--command",
        f'{sys.executable} -c "{script}"',
        "--command",
        f'{sys.executable} -c "raise SystemExit(3)"',
        "--repeat",
        "2",
        "-n",
        "2",
        "--json",
        "r.json",
        "--no-progress",
        cwd=tmp_path,
    )
    assert result.returncode == 1, result.stderr
    report = json.loads((tmp_path / "r.json").read_text())
    assert Counter(c["outcome"] for c in report["cases"]) == {"passed": 2, "failed": 2}
    assert list(report["extra"]["metrics"].values()) == [{"ops_per_s": 42.0}] * 2


@pytest.mark.parametrize("verbosity", [[], ["-q"]])
def test_subtests_fail_their_item_and_count_as_in_pytest(
    sample_project: Path, verbosity: list[str]
) -> None:
    """A failed subtest fails the run (plain pytest exits 1 too), and the final line counts
    what plain pytest's does at the same verbosity ("N subtests passed" only with -q)."""
    args = ["test_subtests.py", *verbosity]
    result = dtf("run", "-n", "2", "--no-progress", "--json", "s.json", "--", *args,
                 cwd=sample_project, env={"COLUMNS": "200"})  # fmt: skip
    plain = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=sample_project,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert result.returncode == plain.returncode == 1, result.stdout + result.stderr
    outcomes = {
        c["nodeid"].rpartition("::")[2]: c["outcome"]
        for c in json.loads((sample_project / "s.json").read_text())["cases"]
    }
    assert outcomes == {
        "test_one_subtest_fails": "failed",
        "test_all_subtests_pass": "passed",
        "test_fixture_subtest_fails": "failed",
        "test_fixture_subtests_pass": "passed",
    }
    final = plain.stdout.strip().splitlines()[-1].strip("= ").rsplit(" in ", 1)[0]
    assert final in result.stdout, (final, result.stdout[-1500:])
    assert ("subtests passed" in final) == bool(verbosity)


SLEEPER = (
    "import os, pathlib, time\n\ndef test_sleeps():\n"
    "    pathlib.Path('started').write_text(str(os.getpid()))\n    time.sleep(120)\n"
)


def test_ctrl_c_stops_an_embedded_run_at_once(tmp_path: Path) -> None:
    """One line, exit 2, and nothing left running: the pytest child goes with the run."""
    (tmp_path / "test_sleep.py").write_text(SLEEPER)
    proc = subprocess.Popen(
        [*DTF, "run", "-n", "1", "--no-progress"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started = tmp_path / "started"
    try:
        eventually(lambda: started.exists() and started.read_text(), timeout=60)
        test_pid = int(started.read_text())
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)  # a bound on hanging, not a measurement
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 2
    assert err.strip() == "dtf: interrupted", err
    eventually(lambda: not psutil.pid_exists(test_pid) or _zombie(test_pid), timeout=10)


def _zombie(pid: int) -> bool:
    with contextlib.suppress(psutil.NoSuchProcess):
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    return True
