"""What `sync_interval: always` (fsync before every ack) costs in publish throughput.

    python bench/fsync.py [--events 5000]

Starts two nats-servers, one with the shipped nats.conf (`sync_interval: always`) and one
without that line (nats-server's default: flush every 2 minutes, acknowledge before fsync),
and measures dtf's event appends on each: awaited one at a time, and pipelined 64 in flight.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events.catalogue import TaskQueued


def events(n: int) -> list[TaskQueued]:
    run = uuid.uuid4().hex[:8]
    return [
        TaskQueued(
            id=uuid.uuid4().hex,
            at=time.time(),
            actor="bench",
            task_id=f"{run}.{i}",
            run_id=run,
            kind="pytest",
            nodeids=(f"tests/test_x.py::test_{i}",),
        )
        for i in range(n)
    ]


async def measure(url: str, n: int) -> tuple[float, float]:
    store = await EventStore.connect(url)
    try:
        batch = events(n // 5)
        started = time.perf_counter()
        for event in batch:
            await store.append(event)
        one_by_one = len(batch) / (time.perf_counter() - started)
        batch = events(n)
        started = time.perf_counter()
        await store.append_many(batch, concurrency=64)
        pipelined = len(batch) / (time.perf_counter() - started)
    finally:
        await store.close()
    return one_by_one, pipelined


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        results = {}
        for name, durable in (("default (lazy fsync)", False), ("sync_interval: always", True)):
            server = start_server(store_dir=Path(tmp) / name.split()[0], durable=durable)
            try:
                results[name] = await measure(server.url, n)
            finally:
                server.stop()
    print(f"{'fsync policy':<24} {'awaited events/s':>17} {'pipelined events/s':>19}")
    for name, (one, many) in results.items():
        print(f"{name:<24} {one:>17,.0f} {many:>19,.0f}")
    (d1, d2), (a1, a2) = results.values()
    print(f"cost of always: awaited x{d1 / a1:.1f} slower, pipelined x{d2 / a2:.1f} slower")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5000)
    asyncio.run(main(parser.parse_args().events))
