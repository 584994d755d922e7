"""The Python a project's tests run with, which need not be the one dtf runs in.

A worker serves projects whose dependencies differ from dtf's own: `dtf worker --python
PATH` (or `python = "..."` in `[tool.dtf]`) names the project's interpreter, typically its
virtual environment's.  pytest children start with it, and command tasks find it first on
PATH, as in an activated environment.  It is probed once, at start, so a wrong path or an
environment without pytest is one clear error instead of a failure in every task.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

from dtf.errors import ConfigError

PROBE = "import sys, pytest; print('%d.%d.%d' % sys.version_info[:3], pytest.__version__)"
PROBE_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Interpreter:
    """An interpreter that runs and imports pytest: its path and versions."""

    path: str
    version: str
    pytest_version: str

    def command_env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        """Our environment with this interpreter's directory first on PATH, VIRTUAL_ENV set
        when it belongs to a virtual environment (so `python` in a command task is the
        project's, as in an activated environment), and `extra`."""
        result = dict(os.environ)
        if self.path != sys.executable:
            bindir = str(Path(self.path).parent)
            result["PATH"] = os.pathsep.join([bindir, result.get("PATH", os.defpath)])
            venv = Path(self.path).parent.parent
            if (venv / "pyvenv.cfg").is_file():
                result["VIRTUAL_ENV"] = str(venv)
        result.update(extra or {})
        return result


def resolve(python: str, base: Path | None = None) -> str:
    """An absolute path for `python`: a command name is looked up on PATH, a relative path
    is taken from `base` (the directory of the pyproject.toml that named it)."""
    if os.sep not in python and (os.altsep is None or os.altsep not in python):
        found = shutil.which(python)
        if found is None:
            raise ConfigError(f"python {python!r} is not on PATH")
        return found
    path = Path(python).expanduser()
    if not path.is_absolute():
        path = (base or Path.cwd()) / path
    # Not resolved through symlinks: a venv's python is a link to the base interpreter,
    # and only the link knows it belongs to the venv.
    return str(Path(os.path.abspath(path)))


def probe(python: str | None) -> Interpreter:
    """The interpreter at `python` (None: the one dtf runs in), checked to run pytest.

    dtf's own needs no probe (pytest is one of its dependencies): that saves an interpreter
    start on every embedded run.
    """
    if python is None or python == sys.executable:
        return Interpreter(sys.executable, platform.python_version(), version("pytest"))
    path = python
    try:
        out = subprocess.run(
            [path, "-c", PROBE],
            capture_output=True,
            text=True,
            timeout=PROBE_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        raise ConfigError(f"cannot run python {path}: {exc.strerror or exc}") from None
    except subprocess.TimeoutExpired:
        raise ConfigError(f"python {path} did not start within {PROBE_TIMEOUT_S:g}s") from None
    if out.returncode != 0:
        if "No module named 'pytest'" in out.stderr:
            raise ConfigError(
                f"python {path} cannot import pytest; install it there ({path} -m pip "
                "install pytest)"
            )
        last = (out.stderr.strip().splitlines() or ["no output"])[-1]
        raise ConfigError(f"python {path} failed to start: {last}")
    python_version, pytest_version = out.stdout.split()
    return Interpreter(path, python_version, pytest_version)
