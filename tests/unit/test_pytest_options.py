"""Reading pytest's summary options as pytest reads them: config files, addopts, env, args.

The values are checked against plain pytest itself: a conftest prints what pytest made of
`-r`, the verbosity and `--durations` for the same files and arguments.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from dtf.client.pytest_config import locate
from dtf.client.pytest_options import SummaryOptions, read, scan

REPORT_PROBE = """
    def pytest_configure(config):
        o = config.option
        print(f"PROBE {o.reportchars!r} {o.verbose!r} {o.durations!r} {o.durations_min!r}")
"""


def write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(textwrap.dedent(text))


def pytest_reading(root: Path, args: list[str], env: dict[str, str]) -> tuple[object, ...]:
    """What plain pytest made of `-r`, verbosity, `--durations` and `--durations-min`."""
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--co", "-p", "no:cacheprovider", *args],
        cwd=root,
        env={**os.environ, "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )
    line = next(line for line in done.stdout.splitlines() if line.startswith("PROBE "))
    return tuple(ast.literal_eval(part) for part in line.split()[1:])


@pytest.mark.parametrize(
    ("files", "args", "env"),
    [
        ({"pytest.ini": "[pytest]\naddopts = -ra --durations=3\n"}, [], {}),
        # The command line comes after addopts and wins; -q counts down.
        ({"pytest.ini": "[pytest]\naddopts = -ra -v\n"}, ["-rfE", "-q", "-q"], {}),
        ({"pyproject.toml": '[tool.pytest.ini_options]\naddopts = ["-rA", "-vv"]\n'}, [], {}),
        ({"tox.ini": "[pytest]\naddopts =\n    -rs\n    --durations 0\n"}, [], {}),
        ({"setup.cfg": "[tool:pytest]\naddopts = -rx --durations-min=0.5\n"}, [], {}),
        # PYTEST_ADDOPTS sits between the file's addopts and the command line.
        ({"pytest.ini": "[pytest]\naddopts = -ra\n"}, [], {"PYTEST_ADDOPTS": "-rX -v"}),
        ({"pytest.ini": "[pytest]\naddopts = -ra\n"}, ["-rN", "--verbosity=2"], {}),
        # pytest.ini wins over pyproject.toml in the same directory.
        (
            {
                "pytest.ini": "[pytest]\naddopts = -rs\n",
                "pyproject.toml": '[tool.pytest.ini_options]\naddopts = "-rx"\n',
            },
            [],
            {},
        ),
        # A config file found from the path arguments, in a directory below.
        ({"sub/pytest.ini": "[pytest]\naddopts = -rp\n", "sub/test_a.py": ""}, ["sub"], {}),
        ({"other.ini": "[pytest]\naddopts = -rX\n"}, ["-c", "other.ini"], {}),
        ({"pytest.ini": "[pytest]\naddopts = -ra\n"}, ["-o", "addopts=-rs"], {}),
        ({}, ["-vra", "-x", "-k", "not slow", "--durations", "2"], {}),
    ],
    ids=[
        "pytest.ini",
        "args-win",
        "pyproject",
        "tox.ini",
        "setup.cfg",
        "PYTEST_ADDOPTS",
        "reset-N",
        "ini-over-pyproject",
        "below",
        "config-file",
        "override-ini",
        "bundled",
    ],
)
def test_options_are_read_as_pytest_reads_them(
    tmp_path: Path, files: dict[str, str], args: list[str], env: dict[str, str]
) -> None:
    write(tmp_path, {**files, "conftest.py": REPORT_PROBE})
    if "sub/pytest.ini" in files:
        (tmp_path / "sub" / "conftest.py").write_text(textwrap.dedent(REPORT_PROBE))

    ours = read(tmp_path, args, {"PYTEST_ADDOPTS": "", **env})

    expected = pytest_reading(tmp_path, args, {"PYTEST_ADDOPTS": "", **env})
    assert (ours.reportchars, ours.verbosity, ours.durations, ours.durations_min) == expected


@pytest.mark.parametrize(
    ("chars", "categories"),
    [
        ("fE", "fE"),
        ("a", "sxXEf"),
        ("A", "PpsxXEf"),
        ("N", ""),
        ("aN", ""),
        ("Nf", "f"),
        ("fs", "fs"),
        ("FS", "fs"),  # pytest's old aliases
        ("fEw", "fE"),  # dtf records no warnings
        ("ffEE", "fE"),
    ],
)
def test_report_categories_follow_getreportopt(chars: str, categories: str) -> None:
    assert SummaryOptions(reportchars=chars).report_categories == categories


def test_values_of_other_options_are_never_read_as_options() -> None:
    found = scan(
        ["-k", "r", "-m", "slow", "--junit-xml", "out", "-p", "no:x", "tests", "--", "-rs"]
    )

    assert found.options.reportchars == "fE"
    assert found.positional == ["tests", "-rs"]


def test_an_unknown_bundled_short_option_stops_the_word() -> None:
    # `-n` is xdist's: whatever follows it in the word is its value, not pytest's flags.
    assert scan(["-n4", "-vq", "-vv"]).options.verbosity == 2


def test_bad_values_keep_the_earlier_ones() -> None:
    found = scan(["--durations=3", "--durations=many", "--durations-min", "x", "-r"])

    assert (found.options.durations, found.options.durations_min) == (3, None)
    assert found.options.reportchars == "fE"


def test_durations_min_default_and_untrimmed_messages() -> None:
    assert SummaryOptions().shortest_duration == 0.005
    assert SummaryOptions(verbosity=2).shortest_duration == 0.0
    assert SummaryOptions(verbosity=2, durations_min=1.0).shortest_duration == 1.0
    assert not SummaryOptions().untrimmed_messages
    assert SummaryOptions(on_ci=True).untrimmed_messages
    assert SummaryOptions(verbosity=2).untrimmed_messages
    assert not SummaryOptions(on_ci=True, force_short_summary=True).untrimmed_messages


def test_ci_is_read_from_the_environment(tmp_path: Path) -> None:
    assert read(tmp_path, [], {"CI": "true"}).on_ci
    assert read(tmp_path, [], {"BUILD_NUMBER": "7"}).on_ci
    assert not read(tmp_path, [], {"CI": ""}).on_ci


def test_rootdir_is_located_as_pytest_locates_it(tmp_path: Path) -> None:
    write(tmp_path, {"pyproject.toml": "[project]\nname = 'x'\n", "pkg/tests/test_a.py": ""})

    # A pyproject.toml without pytest settings still roots the run.
    assert locate(tmp_path / "pkg", ["tests"]).rootdir == tmp_path
    assert locate(tmp_path / "pkg", ["tests"]).inifile == tmp_path / "pyproject.toml"
    assert locate(tmp_path, ["--x", "pkg"], rootdir_arg="pkg").rootdir == tmp_path / "pkg"
    # An unreadable file counts as none: pytest reports it when it runs.
    write(tmp_path, {"pkg/pytest.ini": "[pytest\n"})
    assert locate(tmp_path / "pkg", ["tests"]).addopts == []


def test_node_ids_are_printed_relative_to_the_invocation_directory(tmp_path: Path) -> None:
    options = SummaryOptions(rootdir=tmp_path, invocation_dir=tmp_path / "sub")

    assert options.relative_nodeid("sub/test_a.py::test_b[x::y]") == "test_a.py::test_b[x::y]"
    assert options.relative_nodeid("other/test_c.py") == "../other/test_c.py"
    assert SummaryOptions().relative_nodeid("sub/test_a.py::t") == "sub/test_a.py::t"
