"""Shared fixtures: a real nats-server per test on a free port with a temp store."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from dtf.server import LocalServer, start_server
from dtf.store import EventStore


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[LocalServer]:
    server = start_server(store_dir=tmp_path / "js", log_file=tmp_path / "nats.log")
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
