"""How dtf starts its pytest child processes, describes their exits, and kills them.

Children run `python -m dtf_child` in the project root, each as the leader of a new session
(`start_new_session=True`), so killing its process group also kills whatever the tests
started.  `dtf_child` is a copy of `dtf.runner.child` in a directory of its own, the only
entry dtf adds to the child's path: the child may run in another interpreter (the project's
virtual environment, `dtf worker --python`), and nothing else of dtf's environment must reach
it, since its packages' pytest plugins would load into the user's session.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import tempfile
from collections.abc import Mapping, Sequence
from functools import cache
from pathlib import Path

from dtf.runner.child.wire import PARENT_ENV

CHILD_PACKAGE = "dtf_child"
_SOURCE = Path(__file__).resolve().parent / "child"


@cache
def child_path() -> str:
    """The directory holding the `dtf_child` package (made once per content, then reused).

    Named by a hash of the package's files, so every dtf process of one version shares one
    copy, and an upgrade gets a new one; the copy is made aside and renamed into place, so a
    process never sees a half-written package.
    """
    sources = sorted(_SOURCE.glob("*.py"))
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    home = Path(tempfile.gettempdir()) / f"dtf-child-{digest.hexdigest()[:16]}"
    if not (home / CHILD_PACKAGE / "__main__.py").exists():
        partial = Path(tempfile.mkdtemp(prefix=".dtf-child-", dir=tempfile.gettempdir()))
        (partial / CHILD_PACKAGE).mkdir()
        for source in sources:
            shutil.copyfile(source, partial / CHILD_PACKAGE / source.name)
        try:
            partial.rename(home)
        except OSError:  # another process made it first
            shutil.rmtree(partial, ignore_errors=True)
    return str(home)


def child_command(python: str, mode: str, args: Sequence[str]) -> list[str]:
    return [python, "-m", CHILD_PACKAGE, mode, *args]


def child_env(env: Mapping[str, str] | None, extra: Mapping[str, str]) -> dict[str, str]:
    """The child's environment: `env` (default: ours), the `dtf_child` directory on
    PYTHONPATH (after the user's own entries), and `extra`."""
    result = dict(os.environ if env is None else env)
    paths = [p for p in result.get("PYTHONPATH", "").split(os.pathsep) if p]
    paths.append(child_path())
    result["PYTHONPATH"] = os.pathsep.join(paths)
    result[PARENT_ENV] = str(os.getpid())  # the child dies with us (lifeline)
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
