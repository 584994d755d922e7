"""Entry point of the pytest processes dtf starts: `python -m dtf_child MODE ARGS...`.

MODE "collect" writes the collection as one JSON document to the path in `DTF_RUNNER_OUT`;
MODE "session" serves batches over the two pipe fds named in `DTF_RUNNER_FDS`.  ARGS are the
user's pytest arguments, used exactly as plain pytest would use them: the only plugin added is
this package's own (the `dtf_requires` marker); none of pytest's is disabled.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from .batch_loop import BatchLoop
from .collector import CollectionRecorder
from .lifeline import exit_with_parent
from .measure import from_environment
from .wire import FDS_ENV, OUT_ENV, PARENT_ENV

USAGE = f"usage: python -m {__package__} {{collect|session}} [pytest args...]"
# The plugin by this package's name, whatever it was imported as (`dtf_child` in a project's
# interpreter, see dtf.runner.launch).
BASE_ARGS = ("-p", f"{__package__}.plugin")


def main(argv: Sequence[str] | None = None) -> int:
    """Run pytest in MODE; returns pytest's exit code."""
    mode, *args = sys.argv[1:] if argv is None else argv
    parent = os.environ.pop(PARENT_ENV, "")
    if parent:
        exit_with_parent(int(parent))
    plugin: object
    if mode == "collect":
        plugin = CollectionRecorder(Path(os.environ.pop(OUT_ENV)))
        extra = ["--collect-only", "-q"]
    elif mode == "session":
        command_fd, result_fd = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
        # Processes the tests start must not hold our pipes open (or write to them).
        for fd in (command_fd, result_fd):
            os.set_inheritable(fd, False)
        # Before pytest starts: the imports at collection are measured too.
        measurement = from_environment()
        plugin = BatchLoop(command_fd, result_fd, measurement)
        # No -q: pytest's verbosity decides how subtests are counted (at 0 it leaves passed
        # subtests out), so the user's own must stand.
        extra = []
    else:
        print(USAGE, file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    return int(pytest.main([*args, *BASE_ARGS, *extra], plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main())
