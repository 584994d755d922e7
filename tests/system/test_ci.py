"""`dtf ci` as each example pipeline runs it: the command line is read from the example file
under `examples/ci/`, run by the real CLI with that provider's environment variables, and
every file and annotation it writes is checked (GitHub's workflow commands line by line)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from pathlib import Path
from urllib.parse import unquote

import pytest

from tests.support.cluster import Cluster
from tests.support.paths import TESTS

EXAMPLES = TESTS.parent / "examples" / "ci"
DTF = [sys.executable, "-m", "dtf"]

SUITE = textwrap.dedent(
    """\
    from pathlib import Path

    import pytest


    def test_pass():
        pass


    def test_fail():
        value = 41
        assert value == 42, "the answer, please"


    def test_flaky():
        marker = Path(__file__).with_name("flaky.ran")
        if not marker.exists():
            marker.write_text("once")
            raise AssertionError("fails the first time only")


    def test_quarantined():
        raise RuntimeError("known to break")


    def test_on_gpu():
        pytest.skip("needs " + "cuda")
        device = "cuda:0"
    """
)
FAIL_LINE = SUITE.splitlines().index('    assert value == 42, "the answer, please"') + 1
PYPROJECT = textwrap.dedent(
    """\
    [tool.dtf]
    quarantine = ["tests/test_suite.py::test_quarantined"]
    """
)
# The CI variables each provider sets (their documented names), for a merge/pull request.
PROVIDER_ENV = {
    "github": {
        "GITHUB_ACTIONS": "true",
        "GITHUB_SHA": "0123456789abcdef0123456789abcdef01234567",
        "GITHUB_REF": "refs/pull/17/merge",
        "GITHUB_HEAD_REF": "feature/fast",
        "GITHUB_BASE_REF": "main",
        "GITHUB_SERVER_URL": "https://github.com",
        "GITHUB_REPOSITORY": "acme/widgets",
        "GITHUB_RUN_ID": "99",
    },
    "gitlab": {
        "GITLAB_CI": "true",
        "CI_COMMIT_SHA": "0123456789abcdef0123456789abcdef01234567",
        "CI_COMMIT_REF_NAME": "feature/fast",
        "CI_MERGE_REQUEST_IID": "17",
        "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
        "CI_JOB_URL": "https://gitlab.example/acme/widgets/-/jobs/99",
    },
    "jenkins": {
        "JENKINS_URL": "https://jenkins.example/",
        "GIT_COMMIT": "0123456789abcdef0123456789abcdef01234567",
        "GIT_BRANCH": "origin/feature/fast",
        "CHANGE_ID": "17",
        "CHANGE_TARGET": "main",
        "BUILD_URL": "https://jenkins.example/job/widgets/99/",
    },
}
EXAMPLE_FILES = {
    "github": EXAMPLES / "github" / "dtf.yml",
    "gitlab": EXAMPLES / "gitlab" / ".gitlab-ci.yml",
    "jenkins": EXAMPLES / "jenkins" / "Jenkinsfile",
}
# A workflow command: `::name key=value,key=value::message`.
COMMAND = re.compile(r"^::(?P<kind>error|warning|notice)(?: (?P<props>[^:]*))?::(?P<msg>.*)$")


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    """This process's environment without any CI system's variables (the suite may itself
    run under one), plus `extra`."""
    ci_vars = {name for env in PROVIDER_ENV.values() for name in env}
    ci_vars |= {"GITHUB_STEP_SUMMARY", "GITHUB_OUTPUT", "DTF_SERVER", "DTF_CREDS", "CI"}
    env = {k: v for k, v in os.environ.items() if k not in ci_vars}
    return {**env, "COLUMNS": "80", **extra}


def example_command(provider: str) -> list[str]:
    """The `dtf ci ...` arguments of the provider's example pipeline, as its shell splits them."""
    text = EXAMPLE_FILES[provider].read_text()
    lines = [m[1] for m in re.finditer(r"(?:^|[\s/'])dtf (ci [^'\n]*)", text)]
    assert len(lines) == 1, f"{EXAMPLE_FILES[provider]} should run dtf ci once: {lines}"
    return shlex.split(lines[0])


@pytest.fixture
def ci_project(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "tests").mkdir(parents=True)
    (root / "tests" / "test_suite.py").write_text(SUITE)
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def run_example(provider: str, root: Path, extra: dict[str, str] | None = None):
    env = clean_env({**PROVIDER_ENV[provider], **(extra or {})})
    done = subprocess.run(
        [*DTF, *example_command(provider), "--workers", "2"],
        cwd=root,
        capture_output=True,
        timeout=240,
        env=env,
    )
    # Decoded by hand: text mode would turn GitLab's section markers' CR into LF.
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def parse_command(line: str) -> tuple[str, dict[str, str], str]:
    """A workflow command's kind, properties and message, unescaped as the runner does."""
    found = COMMAND.match(line)
    assert found, f"not a workflow command: {line!r}"
    props = {}
    for pair in filter(None, (found["props"] or "").split(",")):
        key, sep, value = pair.partition("=")
        assert sep and re.fullmatch(r"[a-z]+", key), f"bad property {pair!r} in {line!r}"
        assert not re.search(r"[:,\r\n]", value), f"unescaped property {value!r}"
        props[key] = unquote(value)
    assert "\n" not in found["msg"] and "\r" not in found["msg"]
    return found["kind"], props, unquote(found["msg"])


def check_common_reports(out: Path) -> None:
    """The reports every provider gets, with the suite's five tests in them."""
    cases = {
        case.get("name"): case for case in ET.parse(out / "junit.xml").getroot().iter("testcase")
    }
    assert set(cases) == {"test_pass", "test_fail", "test_flaky", "test_quarantined", "test_on_gpu"}
    assert cases["test_fail"].find("failure") is not None
    assert cases["test_on_gpu"].find("skipped") is not None
    report = json.loads((out / "report.json").read_text())
    assert report, "report.json is empty"
    markdown = (out / "summary.md").read_text()
    assert markdown.startswith("## ❌ dtf: failed (exit code 1): 2 failed, 2 passed, 1 skipped")
    for title in (
        "### Failures: 1",
        "### Flaky (passed after reruns): 1",
        "### Quarantined failures (did not fail the build): 1",
        "### Hardware needs not declared: 1",
    ):
        assert title in markdown
    assert "| tests/test_suite.py::test_on_gpu | gpus=1 |" in markdown
    assert "the answer, please" in markdown
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and "tests/test_suite.py::test_fail" in page
    text = (out / "summary.txt").read_text()
    assert text.startswith("dtf: failed (exit code 1)")
    assert "branch feature/fast" in text and "request #17 into main" in text
    # --cov in every example: Cobertura XML and HTML beside the reports, the figure in them.
    rate = float(ET.parse(out / "coverage.xml").getroot().get("line-rate"))
    assert 0 < rate < 1 and (out / "htmlcov" / "index.html").exists()
    assert f"coverage {100 * rate:.1f}%" in text
    badges = {p.name: json.loads(p.read_text()) for p in (out / "badges").iterdir()}
    assert set(badges) == {"tests.json", "suite-tests.json", "coverage.json", "flaky.json"}
    assert badges["tests.json"]["message"] == "1 failed, 1 quarantined, 2 passed, 1 skipped"
    assert badges["tests.json"]["color"] == "red"
    assert badges["flaky.json"]["message"] == "1"
    assert badges["coverage.json"]["message"] == f"{100 * rate:.0f}%"
    assert all(b["schemaVersion"] == 1 for b in badges.values())


def coverage_total(stdout: str) -> str:
    """The figure GitLab's `coverage:` pattern of the example takes from the log."""
    pattern = re.search(r"coverage: '/(.+)/'", EXAMPLE_FILES["gitlab"].read_text())
    assert pattern, "the GitLab example should say how to read the coverage figure"
    found = re.findall(pattern[1], stdout, re.MULTILINE)
    assert len(found) == 1, found
    return found[0]


def test_github_example(ci_project: Path, tmp_path: Path) -> None:
    summary, outputs = tmp_path / "step_summary.md", tmp_path / "output.txt"
    summary.write_text("earlier step\n")
    done = run_example(
        "github",
        ci_project,
        {"GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs)},
    )
    assert done.returncode == 1, done.stdout + done.stderr
    out = ci_project / "dtf-reports"
    check_common_reports(out)
    assert "dtf ci: github build: commit 0123456789ab" in done.stdout

    commands = [parse_command(line) for line in done.stdout.splitlines() if line.startswith("::")]
    assert [(kind, props.get("title")) for kind, props, _ in commands] == [
        ("error", "tests/test_suite.py::test_fail failed"),
        ("warning", "flaky test"),
        ("warning", "quarantined test failed"),
    ]
    _, props, message = commands[0]
    assert props == {
        "file": "tests/test_suite.py",
        "line": str(FAIL_LINE),
        "title": "tests/test_suite.py::test_fail failed",
    }
    assert "AssertionError: the answer, please" in message and "\n" in message
    _, flaky, flaky_message = commands[1]
    assert flaky == {"file": "tests/test_suite.py", "title": "flaky test"}
    assert flaky_message == "tests/test_suite.py::test_flaky passed after 1 failed run(s)"
    _, quarantined, _ = commands[2]
    assert quarantined["file"] == "tests/test_suite.py" and "line" in quarantined

    # The step summary: what was there, then this run's Markdown, as summary.md holds it.
    assert summary.read_text() == "earlier step\n" + (out / "summary.md").read_text() + "\n"
    values = dict(line.split("=", 1) for line in outputs.read_text().splitlines())
    assert values == {
        "exit-code": "1",
        "run-id": values["run-id"],
        "report-dir": "dtf-reports",
        "tests": "5",
        "passed": "2",
        "failed": "2",  # pytest's count; the quarantined one does not fail the build
        "errors": "0",
        "skipped": "1",
        "flaky": "1",
        "quarantined": "1",
        "undeclared-requirements": "1",
        "coverage": values["coverage"],
    }
    assert float(values["coverage"]) == pytest.approx(float(coverage_total(done.stdout)), abs=0.5)
    assert values["run-id"] and not (out / "gl-code-quality-report.json").exists()


def test_gitlab_example(ci_project: Path) -> None:
    done = run_example("gitlab", ci_project)
    assert done.returncode == 1, done.stdout + done.stderr
    out = ci_project / "dtf-reports"
    check_common_reports(out)
    starts = re.findall(
        r"\x1b\[0Ksection_start:\d+:(\w+)(\[collapsed=true\])?\r\x1b\[0K", done.stdout
    )
    ends = re.findall(r"\x1b\[0Ksection_end:\d+:(\w+)\r\x1b\[0K", done.stdout)
    assert 0 < float(coverage_total(done.stdout)) < 100
    assert starts == [("dtf_run", ""), ("dtf_summary", "[collapsed=true]")]
    assert ends == ["dtf_run", "dtf_summary"]
    assert not any(line.startswith("::") for line in done.stdout.splitlines())
    issues = json.loads((out / "gl-code-quality-report.json").read_text())
    assert len(issues) == 1  # the quarantined failure is not one: it cannot fail the build
    (issue,) = issues
    assert issue["check_name"] == "dtf-test-failed" and issue["severity"] == "major"
    assert issue["location"] == {"path": "tests/test_suite.py", "lines": {"begin": FAIL_LINE}}
    assert issue["description"].startswith("tests/test_suite.py::test_fail failed: ")
    assert re.fullmatch(r"[0-9a-f]{32}", issue["fingerprint"])


def test_jenkins_example(ci_project: Path) -> None:
    done = run_example("jenkins", ci_project)
    assert done.returncode == 1, done.stdout + done.stderr
    out = ci_project / "dtf-reports"
    check_common_reports(out)
    # The plain summary goes to the console log too, as written to summary.txt.
    assert (out / "summary.txt").read_text() in done.stdout
    assert "job https://jenkins.example/job/widgets/99/" in done.stdout
    assert not (out / "gl-code-quality-report.json").exists()


def test_passing_build_exits_0_and_says_so(ci_project: Path) -> None:
    (ci_project / "tests" / "test_suite.py").write_text("def test_ok():\n    pass\n")
    done = run_example("jenkins", ci_project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert (
        (ci_project / "dtf-reports" / "summary.txt")
        .read_text()
        .startswith("dtf: passed: 1 passed in ")
    )


def test_analyze_prints_the_table_without_running(ci_project: Path) -> None:
    done = subprocess.run(
        [*DTF, "ci", "--analyze", "tests"],
        cwd=ci_project,
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env({}),
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tests/test_suite.py" in done.stdout
    row = next(line for line in done.stdout.splitlines() if line.startswith("test_on_gpu"))
    assert row.split()[1:4] == ["-", "gpus=1", "missing"]
    assert "analysed 5 test(s): 1 with hardware needs, 1 not declared" in done.stdout
    assert not (ci_project / "tests" / "flaky.ran").exists()  # nothing ran
    assert not (ci_project / "dtf-reports").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--provider", "travis"], "invalid choice: 'travis'"),
        (["--fail-on-regression"], "--fail-on-regression and --baseline compare"),
        (["--alpha", "2"], "--alpha must be between 0 and 1"),
    ],
)
def test_bad_options_give_one_line(ci_project: Path, args: list[str], expected: str) -> None:
    done = subprocess.run(
        [*DTF, "ci", *args, "tests"],
        cwd=ci_project,
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env({}),
    )
    assert done.returncode == 2
    # One line, or argparse's usage and then its one line.
    last = done.stderr.strip().splitlines()[-1]
    assert expected in last and (
        len(done.stderr.strip().splitlines()) == 1 or "usage:" in done.stderr
    )
    assert "Traceback" not in done.stderr
    assert not (ci_project / "tests" / "flaky.ran").exists()


# The sleep makes the command's own duration (also compared) long against its start-up jitter.
BENCH = """\
import json, os, random, time
time.sleep(0.3)
value = {latency} + random.random()
with open(os.environ["DTF_RESULTS_FILE"], "w") as f:
    json.dump({{"latency_ms": value}}, f)
"""


def test_fail_on_regression_against_the_target_branch(cluster: Cluster, tmp_path: Path) -> None:
    """A merge request's benchmarks 50 % slower than its target branch's runs: exit 1, the
    regression in the summary and as a warning; as fast as the target: exit 0."""
    root = tmp_path / "bench"
    root.mkdir()
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    command = f"{sys.executable} bench.py"
    (root / "bench.py").write_text(BENCH.format(latency=100))
    base = subprocess.run(
        [*DTF, "run", "--no-progress", "--server", cluster.url, "--command", command,
         "--repeat", "6", "--tag", "branch=main"],
        cwd=root, capture_output=True, text=True, timeout=120, env=clean_env({}),
    )  # fmt: skip
    assert base.returncode == 0, base.stdout + base.stderr
    env = clean_env({**PROVIDER_ENV["jenkins"], "GIT_BRANCH": "origin/feature"})

    def candidate(latency: int) -> subprocess.CompletedProcess[str]:
        (root / "bench.py").write_text(BENCH.format(latency=latency))
        return subprocess.run(
            [*DTF, "ci", "--server", cluster.url, "--command", command, "--repeat", "6",
             "--fail-on-regression", "--threshold", "25", "--db", str(tmp_path / "dtf.duckdb")],
            cwd=root, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip

    slower = candidate(150)
    assert slower.returncode == 1, slower.stdout + slower.stderr
    # latency_ms, and the command's own duration: only the benchmark got slower.
    assert re.search(r"regressions against main: \d metric\(s\) compared with 1 run\(s\), "
                     r"1 regression\(s\)", slower.stdout), slower.stdout  # fmt: skip
    markdown = (root / "dtf-reports" / "summary.md").read_text()
    assert "### Regressions against main: " in markdown
    row = next(line for line in markdown.splitlines() if line.startswith("| latency_ms"))
    change = re.search(r"\| ([+-]\d+\.\d)% \|", row)
    assert "| regression |" in row and change and 40 < float(change[1]) < 60, row  # ~ +50%

    same = candidate(100)
    assert same.returncode == 0, same.stdout + same.stderr
    assert "0 regression(s)" in same.stdout


def test_flaky_history_through_a_real_fleet(cluster: Cluster, ci_project: Path) -> None:
    """`dtf ci --reruns 1` on a real worker, then `dtf replay` and `dtf flaky`: the test that
    passed on its rerun is in the history, with its rate."""
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    env = clean_env(PROVIDER_ENV["jenkins"])
    done = subprocess.run(
        [*DTF, "ci", "--server", cluster.url, "--reruns", "1", "tests"],
        cwd=ci_project, capture_output=True, text=True, timeout=180, env=env,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    db = ci_project / "dtf.duckdb"
    for args in (["replay", "--server", cluster.url, "--db", str(db)],
                 ["flaky", "--db", str(db), "--format", "json"]):  # fmt: skip
        step = subprocess.run([*DTF, *args], cwd=ci_project, capture_output=True, text=True,
                              timeout=120, env=env)  # fmt: skip
        assert step.returncode == 0, step.stdout + step.stderr
    doc = json.loads(step.stdout)
    (item,) = doc["items"]
    assert item["nodeid"] == "tests/test_suite.py::test_flaky"
    assert (item["runs"], item["flaky_runs"], item["passed_after_rerun"]) == (1, 1, 1)


@pytest.mark.parametrize(
    ("provider", "schema", "broken"),
    [
        ("github", "vendor.github-workflows", ("runs-on: ubuntu-latest", "runs-on: [1, {}]")),
        ("gitlab", "vendor.gitlab-ci", ("when: always", "when: sometimes")),
    ],
)
def test_example_pipelines_follow_their_ci_schemas(
    provider: str, schema: str, broken: tuple[str, str], tmp_path: Path
) -> None:
    """GitHub's and GitLab's published schemas (vendored by check-jsonschema: no network),
    and a broken copy refused, so that the check is known to look."""
    example = EXAMPLE_FILES[provider]
    bad = tmp_path / example.name
    bad.write_text(example.read_text().replace(*broken))

    def check(path: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "check_jsonschema", "--builtin-schema", schema, str(path)],
            capture_output=True,
            text=True,
            timeout=60,
        )

    good = check(example)
    assert good.returncode == 0, good.stdout + good.stderr
    assert check(bad).returncode == 1
