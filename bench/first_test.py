"""A pytest plugin for bench/overhead.py: records when the first test of a run starts.

Loaded with `-p first_test` (bench/ on PYTHONPATH) into plain pytest, into xdist's workers and
into dtf's pytest children alike; the first process to start a test creates the file named by
$DTF_BENCH_FIRST_TEST and writes the time, and later ones find it there and leave it.
"""

from __future__ import annotations

import os
import time

_done = False


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    global _done
    path = os.environ.get("DTF_BENCH_FIRST_TEST")
    if _done or not path:
        return
    _done = True
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    except FileExistsError:
        return
    with os.fdopen(fd, "w") as out:
        out.write(repr(time.time()))
