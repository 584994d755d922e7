"""Values are checked at the edge (issues #8 and #16): flags, `[tool.dtf]`, markers, results.

The CLI cases run the real `dtf run` in a subprocess; each must fail before any server starts:
exit code 2, one `dtf: error:` line naming the option and its source, no traceback.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dtf.client.config import Settings, load_settings
from dtf.client.options import MAX_WORKERS, check_option
from dtf.client.run import options_from
from dtf.core.requirements import parse
from dtf.errors import ConfigError
from dtf.runner.child.requirements import MarkerError, check_requirements
from dtf.runner.collect import collect
from dtf.worker.command import ResultsError, parse_results

QUICK_S = 30  # far longer than a refusal takes; a run that started a cluster would hang


def dtf_run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DTF_SERVER"}
    return subprocess.run(
        [sys.executable, "-m", "dtf", "run", "--no-progress", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=QUICK_S,
        env=env,
    )


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("dtf: error: "), result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    return lines[0]


@pytest.fixture
def tests_dir(tmp_path: Path) -> Path:
    (tmp_path / "tests_dir").mkdir()
    (tmp_path / "tests_dir" / "test_one.py").write_text("def test_one():\n    pass\n")
    return tmp_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--timeout", "inf"], "--timeout must be a finite number of seconds > 0, got inf"),
        (["--timeout", "nan"], "--timeout must be a finite number of seconds > 0, got nan"),
        (["--timeout", "0"], "--timeout must be a finite number of seconds > 0, got 0.0"),
        (["--timeout", "-1"], "--timeout must be a finite number of seconds > 0, got -1.0"),
        (["--requires", "gpus=-1"], "--requires: gpus must be a whole number >= 0, got '-1'"),
        (
            ["--requires", "memory_gb=nan"],
            "--requires: memory_gb must be a finite number >= 0, got 'nan'",
        ),
        (
            ["--requires", "memory_gb=inf"],
            "--requires: memory_gb must be a finite number >= 0, got 'inf'",
        ),
        (["-n", "0"], "--workers must be a whole number from 1"),
        (["--workers", "-1"], "--workers must be a whole number from 1"),
        (["--reruns", "-1"], "--reruns must be a whole number >= 0, got -1"),
        (["--max-attempts", "0"], "--max-attempts must be a whole number >= 1, got 0"),
        (["--priority", str(2**31)], "--priority must be a whole number from"),
    ],
)
def test_bad_flags_are_one_line(tests_dir: Path, args: list[str], expected: str) -> None:
    line = one_error_line(dtf_run(*args, "tests_dir", cwd=tests_dir))
    assert line.startswith(f"dtf: error: {expected}"), line


def test_undecodable_argv_bytes_are_refused_before_they_reach_an_event(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 arrive as lone surrogates, which no event can hold."""
    result = subprocess.run(
        [sys.executable, "-m", "dtf", "run", "--tag", b"commit=\xff", "."],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=QUICK_S,
    )
    assert one_error_line(result).startswith("dtf: error: --tag must be valid UTF-8 text")
    bad_requirement = dtf_run("--requires", os.fsdecode(b"label=\xff"), ".", cwd=tmp_path)
    assert "--requires: label must be valid UTF-8 text" in one_error_line(bad_requirement)


def test_bad_repeat_is_one_line(tmp_path: Path) -> None:
    line = one_error_line(dtf_run("--command", "true", "--repeat", "0", cwd=tmp_path))
    assert line == "dtf: error: --repeat must be a whole number >= 1, got 0"


@pytest.mark.parametrize(
    ("setting", "expected"),
    [
        ("timeout = inf", "timeout in [tool.dtf] of {} must be a finite number of seconds > 0"),
        ("timeout = nan", "timeout in [tool.dtf] of {} must be a finite number of seconds > 0"),
        ("timeout = 0", "timeout in [tool.dtf] of {} must be a finite number of seconds > 0"),
        ("workers = 0", "workers in [tool.dtf] of {} must be a whole number from 1"),
        ("workers = -1", "workers in [tool.dtf] of {} must be a whole number from 1"),
        (f"workers = {MAX_WORKERS + 1}", "workers in [tool.dtf] of {} must be a whole number"),
        ("split = 'module'", "split in [tool.dtf] of {} must be 'file' or 'test', got 'module'"),
        ("strategy = 'fastest'", "strategy in [tool.dtf] of {} must be one of"),
    ],
)
def test_bad_settings_are_one_line_naming_the_file(
    tests_dir: Path, setting: str, expected: str
) -> None:
    pyproject = tests_dir / "pyproject.toml"
    pyproject.write_text(f"[tool.dtf]\n{setting}\n")
    line = one_error_line(dtf_run("tests_dir", cwd=tests_dir))
    assert line.startswith(f"dtf: error: {expected.format(pyproject)}"), line


def test_flags_and_settings_share_one_check(tmp_path: Path) -> None:
    """The same rule refuses a value from either source; only the name of the source differs."""
    (tmp_path / "pyproject.toml").write_text("[tool.dtf]\ntimeout = -inf\n")
    with pytest.raises(ConfigError) as from_file:
        load_settings(tmp_path)
    with pytest.raises(ConfigError) as from_flag:
        options_from(Settings(), paths=["."], timeout=-math.inf)
    where = f"timeout in [tool.dtf] of {tmp_path / 'pyproject.toml'}"
    assert str(from_file.value) == str(from_flag.value).replace("--timeout", where)


def test_workers_unset_in_settings_means_one_per_cpu(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text("[tool.dtf]\ntimeout = 30\n")
    settings = load_settings(tmp_path)
    assert settings.workers is None and settings.timeout == 30.0
    assert options_from(settings, paths=["."]).workers is None
    assert options_from(settings, paths=["."], workers=3).workers == 3


@pytest.mark.parametrize(
    ("name", "value"),
    [("workers", True), ("timeout", True), ("priority", -(2**31) - 1), ("tags", {"k": "\udcff"})],
)
def test_check_option_refuses(name: str, value: object) -> None:
    with pytest.raises(ConfigError):
        check_option(name, value)


@pytest.mark.parametrize(
    ("name", "value"),
    [("timeout", 0.001), ("timeout", 10**30), ("priority", -5), ("reruns", 0), ("workers", None)],
)
def test_check_option_accepts(name: str, value: object) -> None:
    check_option(name, value)


def test_requirements_bounds() -> None:
    assert parse("cpus=0,gpus=2,memory_gb=0.5,gpu_memory_gb=40").gpus == 2
    for bad, key in [
        ("gpus=-1", "gpus"),
        ("cpus=-3", "cpus"),
        ("gpus=1.5", "gpus"),
        ("memory_gb=nan", "memory_gb"),
        ("memory_gb=inf", "memory_gb"),
        ("memory_gb=1e999", "memory_gb"),
        ("gpu_memory_gb=-1", "gpu_memory_gb"),
        ("label=\udcff", "label"),
    ]:
        with pytest.raises(ValueError, match=f"^{key} must be"):
            parse(bad)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"gpus": -1}, "gpus"),
        ({"cpus": -1}, "cpus"),
        ({"memory_gb": math.nan}, "memory_gb"),
        ({"memory_gb": math.inf}, "memory_gb"),
        ({"gpu_memory_gb": -0.5}, "gpu_memory_gb"),
    ],
)
def test_marker_requirements_bounds(kwargs: dict[str, object], key: str) -> None:
    """What `@pytest.mark.dtf_requires(...)` goes through (dtf/runner/child/requirements.py)."""
    with pytest.raises(MarkerError, match=rf"{key} must be"):
        check_requirements(kwargs)


def test_bad_markers_are_collection_errors_naming_the_key(tmp_path: Path) -> None:
    """Through a real pytest collection: the test is reported, never queued."""
    (tmp_path / "test_marked.py").write_text(
        "import pytest\n"
        "@pytest.mark.dtf_requires(gpus=-1)\n"
        "def test_negative(): pass\n"
        "@pytest.mark.dtf_requires(memory_gb=float('nan'))\n"
        "def test_nan(): pass\n"
        "@pytest.mark.dtf_requires(gpu_memory_gb=float('inf'))\n"
        "def test_inf(): pass\n"
        "@pytest.mark.dtf_requires(gpus=1, memory_gb=8)\n"
        "def test_good(): pass\n"
    )
    collection = collect(tmp_path, ["test_marked.py"])
    assert [i.nodeid for i in collection.items] == ["test_marked.py::test_good"]
    errors = {e.nodeid.split("::")[1]: e.message for e in collection.errors}
    assert set(errors) == {"test_negative", "test_nan", "test_inf"}
    assert "gpus must be" in errors["test_negative"] and "memory_gb must" in errors["test_nan"]
    assert "gpu_memory_gb must be" in errors["test_inf"]


def test_marker_requirements_accept_good_values() -> None:
    checked = check_requirements({"gpus": 1, "memory_gb": 16, "labels": ("cuda",)})
    assert checked == {"gpus": 1, "memory_gb": 16.0, "labels": ["cuda"]}
    with pytest.raises(MarkerError, match="unknown argument 'gpu'"):
        check_requirements({"gpu": 1})


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (b'{"latency_ms": 1e999}', "latency_ms"),
        (b'{"ok": 1.0, "throughput": -1e999}', "throughput"),
        (b'{"metrics": [{"name": "loss", "value": 1e999, "unit": "ms"}]}', "loss"),
    ],
)
def test_results_with_a_non_finite_metric_are_refused_by_name(data: bytes, name: str) -> None:
    with pytest.raises(ResultsError, match=f"metric '{name}' is -?inf, not a finite number"):
        parse_results(data)


def test_results_still_read_good_files_and_refuse_malformed_ones() -> None:
    assert [m.value for m in parse_results(b'{"a": 1.5, "b": 2}')] == [1.5, 2.0]
    long = parse_results(b'{"metrics": [{"name": "x", "value": 3, "unit": "ms"}]}')
    assert long[0].unit == "ms" and long[0].value == 3.0
    for bad in (b'{"a": NaN}', b"[1, 2]", b'{"a": "fast"}', b"{"):
        with pytest.raises(ResultsError):
            parse_results(bad)


async def test_a_command_with_an_infinite_metric_fails_its_task(tmp_path: Path) -> None:
    """The worker's command runner reports the refusal as the task's own failure."""
    from dtf.worker.command import run_command

    script = "import os; open(os.environ['DTF_RESULTS_FILE'], 'w').write('{\"x\": 1e999}')"
    outcome = await run_command(
        [sys.executable, "-c", script], cwd=tmp_path, timeout=30, results=tmp_path / "r.json"
    )
    assert outcome.category == "test" and outcome.metrics == ()
    assert outcome.message == (
        "DTF_RESULTS_FILE is not valid: metric 'x' is inf, not a finite number"
    )
