"""Entry point of the pytest processes dtf starts: `python -m dtf.runner.child MODE ARGS...`.

MODE "collect" writes the collection as one JSON document to the path in `DTF_RUNNER_OUT`;
MODE "session" serves batches over the two pipe fds named in `DTF_RUNNER_FDS`.  ARGS are the
user's pytest arguments.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest

from dtf.lifeline import exit_with_parent
from dtf.runner.batch_loop import BatchLoop
from dtf.runner.collector import CollectReport
from dtf.runner.wire import FDS_ENV, OUT_ENV, PARENT_ENV

USAGE = "usage: python -m dtf.runner.child {collect|session} [pytest args...]"
BASE_ARGS = ("-p", "dtf.runner.plugin", "-p", "no:cacheprovider")


def main(argv: Sequence[str] | None = None) -> int:
    """Run pytest in MODE; returns pytest's exit code."""
    mode, *args = sys.argv[1:] if argv is None else argv
    parent = os.environ.pop(PARENT_ENV, "")
    if parent:
        exit_with_parent(int(parent))
    plugin: object
    if mode == "collect":
        plugin = CollectReport(Path(os.environ.pop(OUT_ENV)))
        extra = ["--collect-only", "-q"]
    elif mode == "session":
        command_fd, result_fd = (int(fd) for fd in os.environ.pop(FDS_ENV).split(","))
        # Processes the tests start must not hold our pipes open (or write to them).
        for fd in (command_fd, result_fd):
            os.set_inheritable(fd, False)
        plugin = BatchLoop(command_fd, result_fd)
        extra = ["-q"]
    else:
        print(USAGE, file=sys.stderr)
        return int(pytest.ExitCode.USAGE_ERROR)
    return int(pytest.main([*args, *BASE_ARGS, *extra], plugins=[plugin]))


if __name__ == "__main__":
    sys.exit(main())
