"""Snapshots in the real object store: a writer killed with SIGKILL halfway through leaves
the previous snapshot readable and whole; a real `dtf coordinator` restarted after kill -9
starts from the snapshot its predecessor wrote and still schedules."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dtf.core import snapshot
from dtf.core.state import View
from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from events import topology
from tests.support.cluster import Cluster, project
from tests.support.fleet_log import fleet_events
from tests.support.polling import eventually

pytestmark = pytest.mark.slow

# Writes a snapshot far too big to finish before the test kills it.
BIG_WRITER = """
import asyncio, os, sys
from dtf.nats.store import EventStore

async def main():
    store = await EventStore.connect(sys.argv[1])
    print("writing", flush=True)
    await store.save_snapshot(b"dtf-view" + os.urandom(300 * 2**20))
    print("written", flush=True)

asyncio.run(main())
"""


async def chunks(store: EventStore) -> int:
    info = await store.js.stream_info(f"OBJ_{topology.SNAPSHOTS_BUCKET}")
    return info.state.messages


async def test_a_writer_killed_halfway_leaves_the_previous_snapshot(
    nats_server: LocalServer, store: EventStore
):
    view = View()
    for seq, event in enumerate(fleet_events(1_000_000.0), start=1):
        view.apply(event, seq)
    good = snapshot.freeze(view)
    await store.save_snapshot(good)
    before = await chunks(store)
    writer = subprocess.Popen(
        [sys.executable, "-c", BIG_WRITER, nats_server.url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline().strip() == "writing"
        # Some of its chunks are stored (a snapshot is 128 KiB chunks): it is halfway.
        deadline = time.monotonic() + 30
        while await chunks(store) < before + 20:
            assert writer.poll() is None and time.monotonic() < deadline, "the writer finished"
            await asyncio.sleep(0.005)
        writer.kill()
        writer.wait(timeout=10)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert await store.load_snapshot() == good
    thawed = snapshot.thaw(good)
    assert thawed is not None and thawed[1] == view.last_seq


def test_a_coordinator_restarted_after_kill_9_starts_from_the_snapshot(
    cluster: Cluster, tmp_path: Path
):
    first = cluster.start("coordinator-1", "coordinator", "--snapshot-every", "5")
    cluster.worker("w1", "--slots", "2")
    root = project(
        tmp_path,
        {f"test_{i}.py": "def test_ok():\n    pass\n" for i in range(4)},
    )
    run = cluster.run(root, "--split", "test")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, out + err
    log1 = tmp_path / "coordinator-1.log"
    eventually(lambda: "snapshot through seq" in log1.read_text(), timeout=30)
    first.kill()  # SIGKILL: no goodbye
    first.wait()

    cluster.start("coordinator-2", "coordinator")
    log2 = tmp_path / "coordinator-2.log"
    eventually(lambda: "starting from the snapshot through seq" in log2.read_text(), timeout=30)
    again = cluster.run(root, "--split", "test")
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0, out + err
    assert "4 passed" in out
