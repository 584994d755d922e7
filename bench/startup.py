"""A coordinator's start on a long history: with and without a snapshot.

    python bench/startup.py [--events 1000000]

Publishes N synthetic events (bench/replay.py's: runs, tasks, results, workers coming and
going), then twice: registers a probe worker and queues a top-priority task only it can take,
starts a real `dtf coordinator` process and times it from its start to that task's
assignment.  The first start finds no snapshot and replays everything (and, leading, writes a
snapshot); it is killed with SIGKILL; the second starts from that snapshot and replays only
the tail.  Prints both times, the snapshot's size and how long the leader took to write it.

Goal: <= 2 s to the first assignment with a snapshot, on 1,000,000 events.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
from replay import publish

from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events.catalogue import Capabilities, Requirements, TaskQueued, WorkerRegistered
from events.subjects import ROOT

_SNAPSHOT_LINE = re.compile(r"snapshot through seq (\d+): (\d+) tasks, ([\d.]+) MB, ([\d.]+) s")


async def probe(url: str, name: str) -> str:
    """A worker only a probe task fits, and that task queued; returns the task id."""
    store = await EventStore.connect(url, name="bench-probe")
    try:
        caps = Capabilities("linux", name, 4, 8.0, labels=(name,))
        await store.append(
            WorkerRegistered(
                id=uuid.uuid4().hex,
                at=time.time(),
                actor=name,
                worker_id=name,
                capabilities=caps,
                slots=1,
            )
        )
        task_id = f"{name}.0"
        await store.append(
            TaskQueued(
                id=uuid.uuid4().hex,
                at=time.time(),
                actor="bench",
                task_id=task_id,
                run_id=name,
                kind="pytest",
                nodeids=("probe.py::test",),
                requirements=Requirements(labels=(name,)),
                priority=100,
            )
        )
        return task_id
    finally:
        await store.close()


async def start_to_assignment(url: str, task_id: str, log: Path) -> tuple[float, float, object]:
    """Seconds from starting a coordinator to `task_id`'s assignment, its RSS then, and the
    process (still running)."""
    store = await EventStore.connect(url, name="bench-watch")
    assigned = asyncio.Event()

    async def on_assigned(msg) -> None:
        assigned.set()

    run_id, n = task_id.split(".")
    sub = await store.nc.subscribe(f"{ROOT}.task.{run_id}.{n}.assigned.*", cb=on_assigned)
    started = time.perf_counter()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dtf",
            "--log-level",
            "INFO",
            "coordinator",
            "--server",
            url,
            "--lost-after",
            "60",
        ],
        stdout=open(log, "wb"),  # noqa: SIM115 - kept by the child
        stderr=subprocess.STDOUT,
    )
    try:
        await asyncio.wait_for(assigned.wait(), 600)
    except TimeoutError:
        proc.kill()
        raise SystemExit(f"no assignment within 600 s: see {log}") from None
    seconds = time.perf_counter() - started
    rss = psutil.Process(proc.pid).memory_info().rss / 2**20
    await sub.unsubscribe()
    await store.close()
    return seconds, rss, proc


async def main_async(count: int) -> None:
    with tempfile.TemporaryDirectory(prefix="dtf-startup-") as tmp:
        folder = Path(tmp)
        server = start_server(store_dir=folder / "store", durable=False)
        try:
            stored = await publish(server.url, count)
            task = await probe(server.url, "probe1")
            cold, cold_rss, proc = await start_to_assignment(server.url, task, folder / "cold.log")
            deadline = time.monotonic() + 300
            while not _SNAPSHOT_LINE.search((folder / "cold.log").read_text()):
                if time.monotonic() > deadline:
                    raise SystemExit("the leader wrote no snapshot within 300 s")
                await asyncio.sleep(0.2)
            written = _SNAPSHOT_LINE.search((folder / "cold.log").read_text())
            assert written is not None
            proc.kill()  # type: ignore[attr-defined]
            proc.wait()  # type: ignore[attr-defined]
            # The dead leader's lease lapses first: what is timed is the start, not the TTL.
            watcher = await EventStore.connect(server.url, name="bench-lease")
            while await watcher.leader() is not None:
                await asyncio.sleep(0.1)
            await watcher.close()
            task = await probe(server.url, "probe2")
            warm, warm_rss, proc = await start_to_assignment(server.url, task, folder / "warm.log")
            proc.kill()  # type: ignore[attr-defined]
            proc.wait()  # type: ignore[attr-defined]
        finally:
            server.stop()
    seq, tasks, mb, freeze_s = written.groups()
    print(f"\n{stored:,} events in the stream")
    print(f"snapshot: through seq {int(seq):,}, {int(tasks):,} tasks, {mb} MB, in {freeze_s} s")
    print(f"{'start':<16} {'to first assignment':>20} {'RSS MB':>8}")
    print(f"{'whole stream':<16} {cold:>19.2f}s {cold_rss:>8.1f}")
    print(f"{'from snapshot':<16} {warm:>19.2f}s {warm_rss:>8.1f}")
    verdict = "met" if warm <= 2 else "NOT met"
    print(f"ratio {cold / warm:.1f}x; goal <= 2 s from a snapshot: {verdict}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    asyncio.run(main_async(args.events))


if __name__ == "__main__":
    main()
