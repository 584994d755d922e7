"""Shared fixtures: a real nats-server per test on a free port with a temp store."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dtf.nats.server import LocalServer, start_cluster_servers, start_server
from dtf.nats.store import EventStore


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[LocalServer]:
    server = start_server(store_dir=tmp_path / "js", log_file=tmp_path / "nats.log", durable=False)
    yield server
    server.stop()


@pytest.fixture
async def store(nats_server: LocalServer) -> AsyncIterator[EventStore]:
    s = await EventStore.connect(nats_server.url, name="test")
    yield s
    await s.close()


def eventually(check: Callable[[], object], timeout: float = 15.0, interval: float = 0.02):
    """Poll `check` until it returns something truthy; fail with its last value at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], object], timeout: float = 15.0, interval: float = 0.02
):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")
        await asyncio.sleep(interval)


PY = sys.executable


@dataclass
class Cluster:
    url: str  # one or more comma-separated server URLs
    tmp: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "DTF_SERVER": self.url}

    def start(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "wb")  # noqa: SIM115 - kept by the child
        proc = subprocess.Popen(
            [PY, "-m", "dtf", "--log-level", "INFO", *args],
            env=env or self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        self.procs[name] = proc
        return proc

    def worker(self, name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
        proc = self.start(
            name,
            "worker",
            "--id",
            name,
            "--cache-dir",
            str(self.tmp / f"cache-{name}"),
            *args,
            env=env,
        )
        eventually(lambda: "ready" in (self.tmp / f"{name}.log").read_text(), timeout=30)
        return proc

    def run(self, project: Path, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            [PY, "-m", "dtf", "run", "--no-progress", *args],
            cwd=project,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
            proc.wait()


@pytest.fixture
def cluster(nats_server: LocalServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(nats_server.url, tmp_path)
    yield c
    c.stop()


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "proj"
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    return root


@pytest.fixture
def nats3(tmp_path: Path) -> Iterator[list[LocalServer]]:
    """A 3-node JetStream cluster on loopback."""
    servers = start_cluster_servers(3, tmp_path / "nats3")
    yield servers.nodes
    servers.stop()
