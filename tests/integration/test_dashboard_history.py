"""The dashboard's history source against real DuckDB files built by `replay` from a real
nats-server: no file, a file it may open, a file another process holds (the case of
`dtf replay --follow`), and a file that is not a read model."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from events.catalogue import TaskFailed
from projections.pipeline.projector import replay
from tests.support.fleet_log import COORDINATOR, fleet_events
from tui.history import History

pytestmark = pytest.mark.slow

# Holds the file read-write until its stdin closes, as `dtf replay --follow` does.
HOLDER = (
    "import sys, duckdb\n"
    "con = duckdb.connect(sys.argv[1])\n"
    "print('holding', flush=True)\n"
    "sys.stdin.read()\n"
)


async def recorded(store: EventStore) -> float:
    base = time.time() - 60
    for event in fleet_events(base):
        await store.append(event)
    return base


async def test_without_a_file_the_panels_say_how_to_get_one(nats_server: LocalServer):
    snapshot = await History(None, [nats_server.url]).refresh(time.time())
    assert not snapshot.available
    assert "dtf replay" in snapshot.source and nats_server.url in snapshot.source


async def test_a_read_model_is_read_and_let_go(
    nats_server: LocalServer, store: EventStore, tmp_path: Path
):
    await recorded(store)
    db = tmp_path / "dtf.duckdb"
    await replay([nats_server.url], db)

    history = History(db, [nats_server.url], cache_dir=tmp_path / "cache")
    snapshot = await history.refresh(time.time())

    assert snapshot.available and snapshot.source == str(db)
    assert [r.run_id for r in snapshot.runs] == ["run-one", "run-two"]
    assert snapshot.runs[0].commit == "abc1234"
    assert snapshot.errors is not None
    hour = snapshot.errors.windows[0]
    assert hour.label == "1h"
    # The recorded timeout and out-of-memory kill are both in the last hour.
    categories = {category for category, _ in hour.counts}
    assert {"timeout", "infrastructure"} <= categories
    assert dict(snapshot.errors.by_worker).keys() >= {"old-1", "gpu-1"}
    assert not (tmp_path / "cache").exists()  # no private copy while the file was free
    # The dashboard closed the file: a writer may open it now.
    duckdb.connect(str(db)).close()


async def test_a_held_file_is_replaced_by_a_private_read_model(
    nats_server: LocalServer, store: EventStore, tmp_path: Path
):
    base = await recorded(store)
    db = tmp_path / "dtf.duckdb"
    await replay([nats_server.url], db)
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        history = History(db, [nats_server.url], cache_dir=tmp_path / "cache")

        first = await history.refresh(time.time())
        assert first.available
        assert f"held by PID {holder.pid}" in first.source
        assert str(history.private) in first.source
        assert history.private.is_file()
        before = first.errors.windows[0].total if first.errors else 0

        # A new error reaches the private model on the next refresh.
        await store.append(
            TaskFailed(
                id="ev-late",
                at=base + 50,
                actor=COORDINATOR,
                task_id="run-two.3",
                worker_id="cpu-2",
                category="timeout",
                message="no result within 600s",
                term=3,
            )
        )
        second = await history.refresh(time.time())
        assert second.available and second.errors is not None
        assert second.errors.windows[0].total == before + 1
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)


async def test_a_file_that_is_not_a_read_model_gives_one_line(
    nats_server: LocalServer, tmp_path: Path
):
    garbage = tmp_path / "notes.duckdb"
    garbage.write_bytes(b"this is not a database\n" * 100)
    snapshot = await History(garbage, [nats_server.url]).refresh(time.time())
    assert not snapshot.available
    assert str(garbage) in snapshot.source and "\n" not in snapshot.source

    other = tmp_path / "other.duckdb"
    duckdb.connect(str(other)).close()  # a database, without dtf's tables
    snapshot = await History(other, [nats_server.url]).refresh(time.time())
    assert not snapshot.available and "not a dtf read model" in snapshot.source
