"""System-test fixtures: keys from `dtf auth`, and `dtf server --auth` as a user starts it."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from dtf.nats import auth
from tests.support.cluster import PY
from tests.support.polling import eventually


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    directory = tmp_path / "keys"
    auth.init(directory)
    return directory


@pytest.fixture
def secured_cli(keys: Path, tmp_path: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`dtf server --auth` as a user starts it; (its process, its URL)."""
    from dtf.nats.server import free_port

    port = free_port()
    proc = subprocess.Popen(
        [PY, "-m", "dtf", "server", "--port", str(port), "--store", str(tmp_path / "st"),
         "--auth", str(keys)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    out = []
    eventually(lambda: out.append(proc.stdout.readline()) or "reloaded when" in "".join(out), 30)
    yield proc, f"nats://127.0.0.1:{port}"
    proc.terminate()
    proc.communicate(timeout=30)
