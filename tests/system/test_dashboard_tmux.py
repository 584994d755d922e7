"""`dtf dashboard` as a user starts it: in tmux at 80x24, against a real coordinator, worker
and `dtf run`; the screen is read with capture-pane, the keys sent with send-keys."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from dtf.nats.server import LocalServer
from tests.support.cluster import Cluster, project
from tests.support.polling import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def screen(session: str) -> str:
    return subprocess.run(
        ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
    ).stdout


def test_the_dashboard_follows_a_real_run(
    nats_server: LocalServer, cluster: Cluster, tmp_path: Path
):
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--slots", "2")
    session = f"dtf-dash-{tmp_path.name}"[:60]
    command = (
        f"XDG_CACHE_HOME={tmp_path / 'cache'} {sys.executable} -m dtf dashboard "
        f"--server {nats_server.url} --mute"
    )
    subprocess.run(
        ["tmux", "new-session", "-d", "-s", session, "-x", "80", "-y", "24", command], check=True
    )
    try:
        eventually(lambda: "1 up" in screen(session), timeout=30)
        eventually(lambda: "coordinator" in screen(session) and "term" in screen(session))
        root = project(
            tmp_path,
            {
                "test_a.py": "def test_ok():\n    pass\n\ndef test_bad():\n    assert 1 == 2\n",
                "test_b.py": "def test_two():\n    pass\n",
            },
        )
        run = cluster.run(root)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, out + err
        eventually(lambda: "tests failed" in screen(session), timeout=20)  # the info alert
        subprocess.run(["tmux", "send-keys", "-t", session, "3"], check=True)
        eventually(lambda: "2 passed" in screen(session) and "1 failed" in screen(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "2"], check=True)
        eventually(lambda: "w1" in screen(session) and "idle" in screen(session))
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        eventually(
            lambda: (
                subprocess.run(
                    ["tmux", "has-session", "-t", session], capture_output=True
                ).returncode
                != 0
            ),
            timeout=15,
        )
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
