"""Fleet scale: one real `dtf coordinator` driving N simulated workers through Q queued tasks.

    python bench/scale.py [--workers 10,100,1000] [--tasks 1000,10000,100000] [--procs 2]

For each point of the sweep: a fresh nats-server with a temp store, the simulated workers in
`--procs` child processes (each worker its own durable consumer on its own assignments, as a
real worker has; a registration with capabilities of mixed kinds; a heartbeat every 0.5 s;
every assignment completed at once with one passing test, guarded by the assignment's
sequence as a real worker's result is), then a real `dtf coordinator` process, then Q tasks
with requirements of mixed kinds (platform, GPUs, labels) submitted as runs of at most 20,000
tasks.  It prints assignments per second (first to last assignment), queued -> assigned
latency p50/p99 (both events as received here), the coordinator's CPU share and peak RSS over
that window, the consumers the server holds and the server's RSS.

A simulated worker does not publish TaskStarted (a real one does, before it runs the task):
the load is meant to fall on the coordinator, not on the simulators.

Then the cost of one scheduling decision in the core alone (`decisions.assignments` on a View
with Q queued tasks and N workers, one slot free as after a completion), per Q: the curve that
must not grow linearly with the queue.

Goal: >= 5,000 assignments/s at 1,000 workers x 100k tasks, coordinator RSS <= 300 MB there.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import msgspec
import psutil

from dtf.core import decisions
from dtf.core.scheduling import strategy as make_strategy
from dtf.core.state import View
from dtf.errors import ConcurrencyConflict, StoreError
from dtf.nats.consumer import Consumer, Delivery
from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events import topology
from events.api import Heartbeat
from events.catalogue import (
    Capabilities,
    CaseResult,
    Gpu,
    Requirements,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskQueued,
    WorkerRegistered,
)
from events.codec import read
from events.subjects import ROOT, assignments_for

RUN_SIZE = 20_000  # tasks per run: a RunSubmitted lists its task ids, under 1 MB
SLOTS = 2
# One task in twenty of each kind; the worker mix below offers each kind at 10 workers.
REQUIREMENTS = (
    (Requirements(),) * 12
    + (Requirements(platform="linux"),) * 3
    + (Requirements(labels=("ci",)),) * 2
    + (Requirements(gpus=1),) * 2
    + (Requirements(platform="darwin"),)
)


def worker_id(i: int) -> str:
    return f"sim-{i:04d}"


def capabilities(i: int) -> Capabilities:
    """One worker in ten a Mac, two in ten GPU servers (1 or 4 GPUs), the rest Linux CPU
    boxes; every other one labelled `ci`."""
    labels: tuple[str, ...] = ("ci",) if i % 2 == 0 else ()
    kind = i % 10
    if kind == 0:
        return Capabilities("darwin", f"mac{i}", 8, 16.0, labels=labels)
    if kind in (1, 2):
        gpus = (Gpu("nvidia", "NVIDIA H100 80GB HBM3", 80.0),) * (1 if kind == 1 else 4)
        return Capabilities("linux", f"gpu{i}", 32, 256.0, gpus=gpus, labels=(*labels, "cuda"))
    return Capabilities("linux", f"cpu{i}", 16, 64.0, labels=labels)


def task_events(q: int, at: float) -> list[tuple[RunSubmitted, list[TaskQueued]]]:
    runs = []
    for r, first in enumerate(range(0, q, RUN_SIZE)):
        run_id = f"r{r}"
        ids = tuple(f"{run_id}.{n}" for n in range(min(RUN_SIZE, q - first)))
        submitted = RunSubmitted(
            id=uuid.uuid4().hex, at=at, actor="bench", run_id=run_id, task_ids=ids
        )
        queued = [
            TaskQueued(
                id=uuid.uuid4().hex,
                at=at,
                actor="bench",
                task_id=tid,
                run_id=run_id,
                kind="pytest",
                nodeids=(f"tests/test_{n % 500}.py::test_{n}",),
                requirements=REQUIREMENTS[(first + n) % len(REQUIREMENTS)],
                expected_duration=0.1 + (n % 7) / 10,
            )
            for n, tid in enumerate(ids)
        ]
        runs.append((submitted, queued))
    return runs


# --- the simulated workers (a child process) ------------------------------------------


async def simulate(url: str, first: int, count: int) -> None:
    """Workers first..first+count-1 on one connection, until SIGTERM; then one JSON line."""
    store = await EventStore.connect(url, name=f"sim-{first}")
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    ids = [worker_id(i) for i in range(first, first + count)]
    counts = {"completed": 0, "conflicts": 0, "errors": 0}
    pending: set[asyncio.Task] = set()

    async def complete(wid: str, assigned: TaskAssigned, delivery: Delivery) -> None:
        done = TaskCompleted(
            id=uuid.uuid4().hex,
            at=time.time(),
            actor=wid,
            task_id=assigned.task_id,
            worker_id=wid,
            attempt=assigned.attempt,
            duration=0.001,
            cases=(CaseResult(f"{assigned.task_id}::test", "passed", 0.001),),
        )
        try:
            await store.append(done, expected_last_seq=delivery.seq)
            counts["completed"] += 1
        except ConcurrencyConflict:
            counts["conflicts"] += 1
        except StoreError:
            counts["errors"] += 1
        await delivery.ack()

    def handler_for(wid: str):
        async def on_assignment(delivery: Delivery) -> None:
            event = read(delivery.subject, delivery.data)
            if isinstance(event, TaskAssigned):
                job = asyncio.ensure_future(complete(wid, event, delivery))
                pending.add(job)
                job.add_done_callback(pending.discard)
            else:
                await delivery.ack()

        return on_assignment

    consumers = []
    for i, wid in zip(range(first, first + count), ids, strict=True):
        consumers.append(await Consumer.resume(store, wid, assignments_for(wid), handler_for(wid)))
        registered = WorkerRegistered(
            id=uuid.uuid4().hex,
            at=time.time(),
            actor=wid,
            worker_id=wid,
            capabilities=capabilities(i),
            slots=SLOTS,
        )
        await store.append(registered)
    print("ready", flush=True)
    while not stop.is_set():
        beat = msgspec.json.encode(Heartbeat(time.time(), cpu=50.0, memory=40.0))
        started = time.monotonic()
        await asyncio.gather(*(store.beat(wid, beat) for wid in ids), return_exceptions=True)
        left = topology.HEARTBEAT_INTERVAL_S - (time.monotonic() - started)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), max(0.01, left))
    print(json.dumps(counts), flush=True)
    await store.close(drain=False)


# --- one point of the sweep -------------------------------------------------------------


class Sampler:
    """CPU seconds and peak RSS of one process, sampled every 0.2 s."""

    def __init__(self, pid: int) -> None:
        self.proc = psutil.Process(pid)
        self.peak_rss = 0
        self._task: asyncio.Task | None = None

    def cpu(self) -> float:
        t = self.proc.cpu_times()
        return t.user + t.system

    async def _sample(self) -> None:
        while True:
            self.peak_rss = max(self.peak_rss, self.proc.memory_info().rss)
            await asyncio.sleep(0.2)

    def start(self) -> None:
        self._task = asyncio.ensure_future(self._sample())

    def stop(self) -> None:
        if self._task:
            self._task.cancel()


async def point(n: int, q: int, procs: int, strategy: str, tmp: Path, fsync: bool) -> dict:
    server = start_server(store_dir=tmp / "store", log_file=tmp / "nats.log", durable=fsync)
    children: list[subprocess.Popen] = []
    coordinator = None
    try:
        store = await EventStore.connect(server.url, name="bench")
        per = -(-n // procs)
        for first in range(0, n, per):
            children.append(
                subprocess.Popen(
                    [
                        sys.executable,
                        __file__,
                        "--server",
                        server.url,
                        "--simulate",
                        f"{first}:{min(per, n - first)}",
                    ],
                    stdout=subprocess.PIPE,
                    text=True,
                )
            )
        for child in children:
            line = await asyncio.to_thread(child.stdout.readline)  # type: ignore[union-attr]
            if line.strip() != "ready":
                raise SystemExit(f"a simulator failed to start (exit {child.poll()})")
        coordinator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "dtf",
                "coordinator",
                "--server",
                server.url,
                "--strategy",
                strategy,
                "--lost-after",
                "10",
                "--id",
                "bench-coordinator",
            ],
            stdout=open(tmp / "coordinator.log", "wb"),  # noqa: SIM115 - kept by the child
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        while await store.leader() != "bench-coordinator":
            if time.monotonic() > deadline or coordinator.poll() is not None:
                raise SystemExit(f"the coordinator did not lead: see {tmp / 'coordinator.log'}")
            await asyncio.sleep(0.05)

        # Receive times of both events, on this host: queued as stored, assigned as decided.
        queued_seen: dict[str, float] = {}
        latencies: list[float] = []
        assigned_at: list[float] = []
        finished: set[str] = set()

        def task_of(subject: str) -> str:
            tokens = subject.split(".")
            return f"{tokens[3]}.{tokens[4]}"

        async def on_queued(msg) -> None:
            queued_seen[task_of(msg.subject)] = time.time()

        async def on_assigned(msg) -> None:
            now = time.time()
            assigned_at.append(now)
            latencies.append(now - queued_seen.get(task_of(msg.subject), now))

        async def on_finished(msg) -> None:
            finished.add(msg.subject.split(".")[3])

        subs = [
            await store.nc.subscribe(f"{ROOT}.task.*.*.queued", cb=on_queued),
            await store.nc.subscribe(f"{ROOT}.task.*.*.assigned.*", cb=on_assigned),
            await store.nc.subscribe(f"{ROOT}.run.*.finished", cb=on_finished),
        ]
        sampler = Sampler(coordinator.pid)
        sampler.start()
        cpu_before = sampler.cpu()
        wall_before = time.monotonic()
        runs = task_events(q, time.time())
        for submitted, queued in runs:
            await store.append(submitted)
            await store.append_many(queued, concurrency=256)
        submitted_s = time.monotonic() - wall_before
        deadline = time.monotonic() + 900
        last_count, last_change = -1, time.monotonic()
        while len(finished) < len(runs):
            if coordinator.poll() is not None:
                raise SystemExit(f"the coordinator died: see {tmp / 'coordinator.log'}")
            if len(assigned_at) != last_count:
                last_count, last_change = len(assigned_at), time.monotonic()
            if time.monotonic() > deadline or time.monotonic() - last_change > 60:
                raise SystemExit(f"stuck at {len(assigned_at)} of {q} assignments")
            await asyncio.sleep(0.1)
        wall = time.monotonic() - wall_before
        cpu = sampler.cpu() - cpu_before
        sampler.stop()
        for sub in subs:
            await sub.unsubscribe()
        info = await store.js.stream_info(topology.EVENTS_STREAM)
        server_rss = psutil.Process(server.process.pid).memory_info().rss
        span = max(assigned_at) - min(assigned_at) if len(assigned_at) > 1 else float("nan")
        latencies.sort()
        result = {
            "workers": n,
            "tasks": q,
            "assigned": len(assigned_at),
            "submit_s": submitted_s,
            "per_s": (len(assigned_at) - 1) / span if span else float("nan"),
            "p50": latencies[len(latencies) // 2],
            "p99": latencies[int(len(latencies) * 0.99)],
            "cpu": 100 * cpu / wall,
            "rss": sampler.peak_rss / 2**20,
            "consumers": info.state.consumer_count,
            "server_rss": server_rss / 2**20,
            "wall": wall,
        }
        await store.close(drain=False)
        return result
    finally:
        for child in children:
            child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
        if coordinator is not None:
            coordinator.kill()
            coordinator.wait()
        server.stop()


# --- the cost of one decision, in the core alone ------------------------------------------


def decision_cost(q: int, n: int, strategy: str, rounds: int = 50) -> float:
    """Mean seconds of one `decisions.assignments` call with q queued tasks, n workers of
    which one has a slot free."""
    view = View()
    seq = 0

    def apply(event) -> None:
        nonlocal seq
        seq += 1
        view.apply(event, seq)

    for i in range(n):
        apply(
            WorkerRegistered(
                id=f"w{i}",
                at=0.0,
                actor="bench",
                worker_id=worker_id(i),
                capabilities=capabilities(i),
                slots=SLOTS,
            )
        )
    (submitted, queued), *more = task_events(q + n * SLOTS, 1.0)
    busy = queued[: n * SLOTS]
    for submitted_, queued_ in [(submitted, queued), *more]:
        apply(submitted_)
        for event in queued_:
            apply(event)
    for k, event in enumerate(busy):  # fill every slot, then free one
        apply(
            TaskAssigned(
                id=f"a{k}",
                at=2.0,
                actor="bench",
                task_id=event.task_id,
                worker_id=worker_id(k // SLOTS),
                term=1,
            )
        )
    free = next(
        i for i in range(n) if capabilities(i).platform == "linux" and not capabilities(i).gpus
    )
    apply(
        TaskCompleted(
            id="done",
            at=3.0,
            actor="bench",
            task_id=busy[free * SLOTS].task_id,
            worker_id=worker_id(free),
        )
    )
    chooser = make_strategy(strategy)
    stamp = decisions.Stamp(4.0, "bench", 1, lambda: "id", random.random)
    decisions.assignments(view, stamp, chooser)  # any index is built once, at the first round
    started = time.perf_counter()
    for _ in range(rounds):
        made = decisions.assignments(view, stamp, chooser)
    elapsed = (time.perf_counter() - started) / rounds
    assert len(made) == 1, made
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--workers", default="10,100,1000", help="comma-separated N")
    parser.add_argument("--tasks", default="1000,10000,100000", help="comma-separated Q")
    parser.add_argument("--procs", type=int, default=2, help="simulator processes")
    parser.add_argument("--strategy", default="duration")
    parser.add_argument(
        "--fsync",
        choices=["always", "lazy"],
        default="always",
        help="the server's sync_interval: always as `dtf server` (default), or nats' lazy default",
    )
    parser.add_argument("--decisions-only", action="store_true", help="only the core's curve")
    parser.add_argument("--simulate", help=argparse.SUPPRESS)
    parser.add_argument("--server", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.simulate:
        first, count = map(int, args.simulate.split(":"))
        asyncio.run(simulate(args.server, first, count))
        return
    try:
        workers = [int(x) for x in args.workers.split(",")]
        tasks = [int(x) for x in args.tasks.split(",")]
    except ValueError:
        parser.error("--workers and --tasks take comma-separated whole numbers")
    print(
        f"{os.cpu_count()} CPUs; strategy {args.strategy}; {SLOTS} slots per worker; "
        f"server fsync {args.fsync}"
    )
    if not args.decisions_only:
        print(
            f"{'workers':>7} {'tasks':>7} {'assign/s':>9} {'p50 s':>7} {'p99 s':>7} "
            f"{'coord CPU%':>10} {'coord MB':>8} {'consumers':>9} {'server MB':>9} {'wall s':>7}",
            flush=True,
        )
        for n in workers:
            for q in tasks:
                with tempfile.TemporaryDirectory(prefix="dtf-scale-") as tmp:
                    fsync = args.fsync == "always"
                    r = asyncio.run(point(n, q, args.procs, args.strategy, Path(tmp), fsync))
                print(
                    f"{r['workers']:>7} {r['tasks']:>7} {r['per_s']:>9.0f} {r['p50']:>7.2f} "
                    f"{r['p99']:>7.2f} {r['cpu']:>10.1f} {r['rss']:>8.1f} {r['consumers']:>9} "
                    f"{r['server_rss']:>9.1f} {r['wall']:>7.1f}",
                    flush=True,
                )
    print("\none scheduling decision in the core (one slot free), mean of 50:")
    print(f"{'workers':>7} {'queued':>7} {'ms':>8}")
    for n in workers:
        costs = []
        for q in tasks:
            cost = decision_cost(q, n, args.strategy)
            costs.append(cost)
            print(f"{n:>7} {q:>7} {cost * 1000:>8.3f}", flush=True)
        if len(costs) > 1:
            growth = costs[-1] / costs[0]
            print(f"        x{tasks[-1] / tasks[0]:.0f} queue -> x{growth:.1f} cost")


if __name__ == "__main__":
    main()
