"""Shared fixtures: a real nats-server per test on a free port with a temp store, a store
client on it, a cluster of dtf processes against it, and a three-node JetStream cluster.

Helpers that tests import live in `tests/support/`; this file holds fixtures only."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from dtf.nats.server import LocalServer, start_cluster_servers, start_server
from dtf.nats.store import EventStore
from tests.support.cluster import Cluster


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


@pytest.fixture
def cluster(nats_server: LocalServer, tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(nats_server.url, tmp_path)
    yield c
    c.stop()


@pytest.fixture
def nats3(tmp_path: Path) -> Iterator[list[LocalServer]]:
    """A 3-node JetStream cluster on loopback."""
    servers = start_cluster_servers(3, tmp_path / "nats3")
    yield servers.nodes
    servers.stop()
