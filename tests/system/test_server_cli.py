"""`dtf server` through the real CLI: when its nats-server dies, one line names the real log
and what it said (issue #16 C)."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from dtf.nats.server import free_port, last_log_line
from tests.support.paths import ROOT


def listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def dtf_server() -> Iterator[list[subprocess.Popen]]:
    """Started `dtf server` processes; whatever is left of them (and of their nats-server
    children) is killed at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            for child in psutil.Process(proc.pid).children(recursive=True):
                child.kill()
            proc.kill()
        proc.communicate(timeout=30)


def start(started: list[subprocess.Popen], port: int, store: Path) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "dtf", "server", "--port", str(port), "--store", str(store)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},  # its first line arrives when printed
    )
    started.append(proc)
    return proc


def error_line(proc: subprocess.Popen) -> str:
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode not in (0, None), stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("dtf: error: "), stderr
    return lines[0]


def test_a_killed_nats_server_is_one_line_naming_its_log(
    dtf_server: list[subprocess.Popen], tmp_path: Path
) -> None:
    port, store = free_port(), tmp_path / "store"
    proc = start(dtf_server, port, store)
    # Up once it says so: listening on the port comes before `dtf server` has its ports file.
    assert proc.stdout is not None
    assert proc.stdout.readline().startswith("nats-server listening on"), proc.communicate()
    assert listening(port)
    [nats] = psutil.Process(proc.pid).children()
    assert "nats-server" in nats.name()
    nats.send_signal(signal.SIGKILL)

    line = error_line(proc)
    found = re.search(r"its log (\S+) ends with: (.+)$", line)
    assert found, line
    log = Path(found[1])
    assert log == store / "nats-server.log" and log.is_file()
    assert found[2] == last_log_line(log) != ""  # what nats-server itself last said
    assert line.startswith("dtf: error: nats-server killed by signal SIGKILL;"), line


def test_a_server_that_cannot_start_says_why_from_its_log(
    dtf_server: list[subprocess.Popen], tmp_path: Path
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = start(dtf_server, port, tmp_path / "store")
        line = error_line(proc)
    assert "nats-server exited at start" in line and "address already in use" in line, line
    assert f"(log: {tmp_path / 'store' / 'nats-server.log'})" in line


def test_the_last_log_line_prefers_the_fatal_one(tmp_path: Path) -> None:
    log = tmp_path / "nats.log"
    assert last_log_line(log) == ""  # no file yet
    log.write_text(
        "[41] 2025/01/01 12:00:00.000001 [INF] Starting nats-server\n"
        "[41] 2025/01/01 12:00:00.000002 [FTL] Error listening on port: 127.0.0.1:4222\n"
        "[41] 2025/01/01 12:00:00.000003 [INF] Server Exiting..\n\n"
    )
    assert last_log_line(log) == "[FTL] Error listening on port: 127.0.0.1:4222"
    log.write_text("[41] 2025/01/01 12:00:00.000001 [INF] Server is ready\n")
    assert last_log_line(log) == "[INF] Server is ready"
    log.write_text("panic: runtime error: index out of range\n\ngoroutine 1 [running]:\nmain()\n")
    assert last_log_line(log) == "panic: runtime error: index out of range"
