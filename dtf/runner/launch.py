"""How dtf starts its pytest child processes, describes their exits, and kills them.

Children run `python -m dtf.runner.child` in the project root, each as the leader of a new
session (`start_new_session=True`), so killing its process group also kills whatever the
tests started.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Mapping, Sequence
from pathlib import Path

import dtf
from dtf.runner.wire import PARENT_ENV

CHILD_MODULE = "dtf.runner.child"
# The directory holding the `dtf` package, so children find it even when dtf is not installed
# into their interpreter.  Appended, so the project's own top-level modules win.
PACKAGE_ROOT = str(Path(dtf.__file__).resolve().parent.parent)


def child_command(python: str, mode: str, args: Sequence[str]) -> list[str]:
    return [python, "-m", CHILD_MODULE, mode, *args]


def child_env(env: Mapping[str, str] | None, extra: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: `env` (default: ours), dtf's PYTHONPATH entry, and `extra`."""
    result = dict(os.environ if env is None else env)
    paths = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p]
    if PACKAGE_ROOT not in paths:
        paths.append(PACKAGE_ROOT)
    result["PYTHONPATH"] = os.pathsep.join(paths)
    result[PARENT_ENV] = str(os.getpid())  # the child dies with us (dtf.lifeline)
    result.update(extra)
    return result


def kill_group(pid: int) -> None:
    """SIGKILL the process group led by `pid`; quiet when it is already gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def describe_exit(returncode: int) -> str:
    """How a child ended, e.g. "exited with code 3" or "killed by signal SIGSEGV"."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = str(-returncode)
        return f"killed by signal {name}"
    return f"exited with code {returncode}"
