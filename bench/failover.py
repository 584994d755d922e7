"""How fast dtf recovers, with default settings, over several trials (medians printed).

    python bench/failover.py [--trials 5]

1. Leader failover: two coordinators and a worker; with tasks queued, SIGKILL the leader and
   time from the kill to the first assignment made under a new term.
2. Worker loss: two workers; while a long task runs on one, SIGKILL it and time from the kill
   to that task starting on the other worker.

Goals: both <= 3 s (for scale: Kubernetes' default lease is 15 s).  Times are wall clock on
one machine; event timestamps and the kill use the same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import time

from dtf.nats.lease import LEADER_BUCKET, LEADER_KEY
from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events.catalogue import TaskAssigned, TaskStarted, WorkerRegistered

PY = sys.executable


async def load(url: str):
    store = await EventStore.connect(url)
    try:
        return await store.load("dtf.evt.>", timeout=60)
    finally:
        await store.close()


async def wait_for(url: str, predicate, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for rec in await load(url):
            if predicate(rec.event):
                return rec.event
        await asyncio.sleep(0.05)
    raise SystemExit("timed out waiting for an event; is the cluster healthy?")


async def leader_of(url: str) -> str:
    store = await EventStore.connect(url)
    try:
        kv = await store.js.key_value(LEADER_BUCKET)
        return (await kv.get(LEADER_KEY)).value.decode()
    finally:
        await store.close()


def spawn(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "dtf", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )


def submit(env: dict[str, str], *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [PY, "-m", "dtf", "run", "--no-progress", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def leader_trial() -> float:
    server = start_server()
    env = {**os.environ, "DTF_SERVER": server.url}
    procs = {name: spawn(env, "coordinator", "--id", name) for name in ("c1", "c2")}
    procs["w"] = spawn(env, "worker", "--id", "w", "--slots", "1")
    try:
        await wait_for(server.url, lambda e: isinstance(e, WorkerRegistered))
        run = submit(env, "--command", "sleep 0.2", "--repeat", "40")
        await wait_for(server.url, lambda e: isinstance(e, TaskStarted))
        leader = await leader_of(server.url)
        old_term = max(getattr(r.event, "term", 0) for r in await load(server.url))
        killed_at = time.time()
        procs[leader].send_signal(signal.SIGKILL)
        assigned = await wait_for(
            server.url, lambda e: isinstance(e, TaskAssigned) and e.term > old_term
        )
        run.kill()
        return assigned.at - killed_at
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        server.stop()


async def worker_trial() -> float:
    server = start_server()
    env = {**os.environ, "DTF_SERVER": server.url}
    procs = {"c": spawn(env, "coordinator"), "w1": spawn(env, "worker", "--id", "w1")}
    try:
        await wait_for(server.url, lambda e: isinstance(e, WorkerRegistered))
        run = submit(env, "--command", "sleep 30")
        first = await wait_for(server.url, lambda e: isinstance(e, TaskStarted))
        procs["w2"] = spawn(env, "worker", "--id", "w2")
        await wait_for(
            server.url, lambda e: isinstance(e, WorkerRegistered) and e.worker_id == "w2"
        )
        killed_at = time.time()
        procs["w1"].send_signal(signal.SIGKILL)
        again = await wait_for(
            server.url,
            lambda e: (
                isinstance(e, TaskStarted) and e.task_id == first.task_id and e.worker_id == "w2"
            ),
        )
        run.kill()
        return again.at - killed_at
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        server.stop()


async def main(trials: int) -> None:
    results = {
        "leader SIGKILL -> next assignment by the new leader": [],
        "worker SIGKILL -> its task running on another worker": [],
    }
    for trial in range(trials):
        leader = await leader_trial()
        worker = await worker_trial()
        results["leader SIGKILL -> next assignment by the new leader"].append(leader)
        results["worker SIGKILL -> its task running on another worker"].append(worker)
        print(f"trial {trial + 1}: leader {leader:.2f}s, worker {worker:.2f}s", flush=True)
    print(f"\nmedians over {trials} trials (goal <= 3 s each):")
    for name, values in results.items():
        print(
            f"  {name:<55} {statistics.median(values):5.2f} s "
            f"(min {min(values):.2f}, max {max(values):.2f})"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=5)
    asyncio.run(main(parser.parse_args().trials))
