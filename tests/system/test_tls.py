"""TLS between dtf and nats-server (issue #10): a throwaway CA signs the server's certificate;
clients verify it against the CA they are given, and refuse a server they cannot verify."""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtf.errors import ServerUnreachable
from dtf.nats import auth
from dtf.nats.server import LocalServer, start_server
from dtf.nats.store import EventStore
from tests.support.certificates import make_ca_and_server_cert
from tests.support.cluster import PY


@pytest.fixture
def certs(tmp_path: Path) -> tuple[Path, Path, Path]:
    return make_ca_and_server_cert(tmp_path / "certs")


@pytest.fixture
def tls_server(tmp_path: Path, certs: tuple[Path, Path, Path]) -> Iterator[LocalServer]:
    keys = tmp_path / "keys"
    auth.init(keys)
    _, cert, key = certs
    server = start_server(
        store_dir=tmp_path / "js",
        durable=False,
        log_file=tmp_path / "nats.log",
        authorization=auth.render(auth.load_users(keys)),
        tls=(cert, key),
    )
    yield server
    server.stop()


async def test_a_client_given_the_ca_connects_over_tls(
    tls_server: LocalServer, certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    assert tls_server.url.startswith("tls://")
    ca = certs[0]
    store = await EventStore.connect(
        tls_server.url, creds=tmp_path / "keys" / "admin.nk", tls_ca=ca
    )
    try:
        await store.ensure_topology(with_leases=True)
        assert await store.last_seq() == 0
    finally:
        await store.close()


async def test_a_server_it_cannot_verify_is_refused_in_one_line(
    tls_server: LocalServer, tmp_path: Path
) -> None:
    other_ca = make_ca_and_server_cert(tmp_path / "other", name="someone else")[0]
    creds = tmp_path / "keys" / "admin.nk"
    for ca in (None, other_ca):  # the system's authorities, then a CA that did not sign it
        with pytest.raises(ServerUnreachable, match=r"TLS with .* failed: .*certificate") as err:
            await EventStore.connect(tls_server.url, creds=creds, tls_ca=ca, timeout=3)
        assert "\n" not in str(err.value)


def test_the_cli_verifies_with_tls_ca(
    tls_server: LocalServer, certs: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    async def set_up() -> None:
        store = await EventStore.connect(
            tls_server.url, creds=tmp_path / "keys" / "admin.nk", tls_ca=certs[0]
        )
        await store.ensure_topology(with_leases=True)
        await store.close()

    asyncio.run(set_up())
    viewer = str(tmp_path / "keys" / "viewer.nk")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DTF_")}
    base = [PY, "-m", "dtf", "status", "--server", tls_server.url, "--creds", viewer]
    done = subprocess.run(
        [*base, "--tls-ca", str(certs[0])], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    assert "coordinator: none leads" in done.stdout
    refused = subprocess.run(base, capture_output=True, text=True, timeout=60, env=env)
    assert refused.returncode == 2
    assert refused.stderr.startswith("dtf: error: TLS with ") and "--tls-ca" in refused.stderr
    assert len(refused.stderr.splitlines()) == 1, refused.stderr
