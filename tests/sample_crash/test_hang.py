"""Tests that hang far longer than any timeout the runner's tests use."""

from __future__ import annotations

import subprocess
import sys
import time


def test_quick() -> None:
    assert True


def test_sleeps() -> None:
    time.sleep(60)


def test_spawns_and_sleeps() -> None:
    # A grandchild of the session: killing the session's process group must take it too.
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    time.sleep(60)
