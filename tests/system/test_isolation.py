"""Installing dtf changes nobody's test run, and tests run in the project's own interpreter.

Two real virtual environments, made once for the module: one where only `pip install .` was
done (what a user gets), and one with pytest and nothing of dtf (a project whose
dependencies differ from dtf's own).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

from tests.support.cluster import Cluster, project
from tests.support.paths import ROOT as REPO
from tests.support.plain_pytest import run_plain_pytest

# Fixture-only plugins that dtf's dependencies bring and that change no test's outcome:
# platformdirs (required by textual) adds the `platformdirs_isolated` fixture.
HARMLESS_PLUGINS = {"platformdirs"}
STRICT_SUITE = {
    "pyproject.toml": '[tool.pytest.ini_options]\nfilterwarnings = ["error"]\naddopts = "-ra"\n',
    "test_plain.py": """
import warnings
import pytest

def test_ok():
    assert True

@pytest.mark.parametrize("n", [1, 2, 3])
def test_param(n):
    assert n

def test_cache_fixture(cache):
    cache.set("dtf/check", 7)
    assert cache.get("dtf/check", 0) == 7

def test_no_asyncio_plugin(pytestconfig):
    assert not pytestconfig.pluginmanager.has_plugin("asyncio")

def test_warning_is_an_error_here():
    with pytest.raises(UserWarning):
        warnings.warn("strict", UserWarning)

@pytest.mark.skip(reason="not today")
def test_skipped():
    pass

@pytest.mark.xfail(reason="known")
def test_known_bug():
    assert False

class TestGroup:
    def test_member(self, tmp_path):
        assert tmp_path.is_dir()
""",
}


def make_venv(path: Path, *packages: str) -> Path:
    """A fresh virtual environment with `packages` installed; returns its python."""
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True, timeout=300)
    python = path / "bin" / "python"
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages],
        check=True,
        timeout=900,
        capture_output=True,
    )
    return python


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv where only `pip install .` (no extras) was done."""
    return make_venv(tmp_path_factory.mktemp("venvs") / "dtf", str(REPO))


@pytest.fixture(scope="module")
def foreign(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a venv with pytest and nothing of dtf."""
    return make_venv(tmp_path_factory.mktemp("venvs") / "project", "pytest")


def run(cmd: list[str], cwd: Path, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    env.pop("PYTHONPATH", None)
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def test_installing_dtf_adds_no_plugin_to_a_users_pytest(installed: Path, tmp_path: Path) -> None:
    plugins = run(
        [
            str(installed),
            "-c",
            "from importlib.metadata import entry_points\n"
            "print(' '.join(e.name for e in entry_points(group='pytest11')))",
        ],
        tmp_path,
    )
    assert set(plugins.stdout.split()) <= HARMLESS_PLUGINS, plugins.stdout
    # This very test environment has dtf's dev tools, pytest-asyncio among them; the check
    # above is the one that matters, but the difference shows it is not vacuous.
    assert "asyncio" in {e.name for e in entry_points(group="pytest11")}

    root = project(tmp_path, STRICT_SUITE)
    plain = run_plain_pytest(root, [], python=str(installed), options=())
    assert plain.counts == {"passed": 8, "skipped": 1, "xfailed": 1}, plain.output
    result = run(
        [str(installed.parent / "dtf"), "run", "-n", "2", "--no-progress", "--json", "r.json"],
        root,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((root / "r.json").read_text())
    assert {c["nodeid"]: c["outcome"] for c in report["cases"]} == plain.outcomes


def foreign_project(tmp_path: Path, python: Path) -> Path:
    prefix = str(python.parent.parent)
    return project(
        tmp_path,
        {
            "pyproject.toml": f'[tool.dtf]\npython = "{python}"\n',
            "test_where.py": f"""
import importlib.util
import sys

def test_runs_in_the_projects_venv():
    assert sys.prefix == {prefix!r}

def test_nothing_of_dtf_is_importable():
    for name in ("dtf", "events", "projections", "msgspec", "nats", "duckdb"):
        assert importlib.util.find_spec(name) is None, name
""",
            "probe.py": f"""
import json, os, sys
json.dump({{"in_project_venv": float(sys.prefix == {prefix!r})}},
          open(os.environ["DTF_RESULTS_FILE"], "w"))
""",
        },
    )


def test_tests_and_commands_run_in_the_projects_interpreter(foreign: Path, tmp_path: Path) -> None:
    """`[tool.dtf] python`: collection, the embedded workers' pytest and command tasks."""
    root = foreign_project(tmp_path, foreign)
    dtf = [sys.executable, "-m", "dtf", "run", "--no-progress", "-n", "2", "--json", "r.json"]
    result = run(dtf, root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    report = json.loads((root / "r.json").read_text())
    assert [c["outcome"] for c in report["cases"]] == ["passed", "passed"]

    result = run([*dtf, "--command", "python probe.py"], root)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [metrics] = json.loads((root / "r.json").read_text())["extra"]["metrics"].values()
    assert metrics == {"in_project_venv": 1.0}


def test_a_worker_with_python_serves_another_environment(
    foreign: Path, cluster: Cluster, tmp_path: Path
) -> None:
    root = foreign_project(tmp_path, foreign)
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--python", str(foreign))
    run = cluster.run(root, ".", "--json", "r.json")
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, (out[-3000:], err[-3000:])
    report = json.loads((root / "r.json").read_text())
    assert [c["outcome"] for c in report["cases"]] == ["passed", "passed"]


@pytest.mark.parametrize(
    ("python", "message"),
    [
        ("/no/such/python", "cannot run python /no/such/python: No such file or directory"),
        ("no-such-python-here", "python 'no-such-python-here' is not on PATH"),
    ],
)
def test_a_bad_python_is_one_line(tmp_path: Path, python: str, message: str) -> None:
    result = run(
        [sys.executable, "-m", "dtf", "worker", "--python", python, "--server", "nats://x:1"],
        tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"dtf: error: {message}"], result.stderr
