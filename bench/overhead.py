"""dtf against plain pytest and pytest-xdist on the same suite, and dtf's dispatch latency.

    python bench/overhead.py SUITE_DIR [--rounds 3] [--workers 2] [--tasks 1000]

Part 1 runs the suite with `pytest`, `pytest -n W` (xdist) and `dtf run -n W` (embedded
server, W local workers), alternating, ROUNDS times each, and prints the median wall times and
the ratio dtf / xdist.  Goal (checked by running this, not by a test): ratio <= 1.0 on a
suite of >= 1,000 tests (`python bench/make_suite.py /tmp/suite` writes one).

Part 2 starts a nats-server, a coordinator and W workers (one slot each, as `dtf run` starts
them), submits TASKS trivial command tasks (`true`) with `dtf run --server`, and reads the
event timestamps back from the stream.  It runs twice: with the shipped nats.conf (fsync
before every acknowledgement) and with lazy fsync (as the embedded server of `dtf run`).
Dispatch latency per task = started.at - ready, where ready is when the task could first
have been dispatched: the later of its queued.at and the completion, on the same worker, that
freed the slot it got (time spent waiting for a free slot is queueing, not dispatch).  Also
printed: queued -> assigned and assigned -> started.  Goals: p50 <= 5 ms,
p99 <= 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events.catalogue import TaskAssigned, TaskCompleted, TaskQueued, TaskStarted

PY = sys.executable


BENCH_DIR = Path(__file__).resolve().parent


def timed(cmd: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, seconds until the first test started) of one run of `cmd` in `cwd`."""
    marker = Path(tempfile.mkdtemp(prefix="dtf-bench-")) / "first-test"
    path = os.pathsep.join(p for p in (str(BENCH_DIR), os.environ.get("PYTHONPATH", "")) if p)
    env = {**os.environ, "DTF_BENCH_FIRST_TEST": str(marker), "PYTHONPATH": path}
    started = time.time()
    proc = subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    elapsed = time.time() - started
    if proc.returncode not in (0, 1):
        sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.decode()[-500:]}")
    first = float(marker.read_text()) - started if marker.exists() else float("nan")
    shutil.rmtree(marker.parent, ignore_errors=True)
    return elapsed, first


def compare(suite: Path, rounds: int, workers: int) -> None:
    # No paths: each tool collects what the project's own configuration says (testpaths).
    plugin = ["-p", "first_test"]
    commands = {
        "pytest": [PY, "-m", "pytest", "-q", *plugin],
        f"pytest -n {workers}": [PY, "-m", "pytest", "-q", "-n", str(workers), *plugin],
        f"dtf run -n {workers}": [
            PY, "-m", "dtf", "run", "-n", str(workers), "--no-progress", "--", *plugin
        ],
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in commands}
    firsts: dict[str, list[float]] = {name: [] for name in commands}
    for r in range(rounds):
        for name, cmd in commands.items():
            wall, first = timed(cmd, suite)
            times[name].append(wall)
            firsts[name].append(first)
        print(
            f"round {r + 1}: " + ", ".join(f"{n} {t[-1]:.2f}s" for n, t in times.items()),
            flush=True,
        )
    med = {name: statistics.median(t) for name, t in times.items()}
    print(f"\nsuite {suite} ({rounds} rounds, median wall time; first test started after)")
    for name, value in med.items():
        print(f"  {name:<16} {value:7.2f} s   first test {statistics.median(firsts[name]):5.2f} s")
    xdist, dtf = med[f"pytest -n {workers}"], med[f"dtf run -n {workers}"]
    print(f"  ratio dtf / xdist = {dtf / xdist:.2f}   (goal <= 0.9; <= 1.0 for 200 tests)")
    print(f"  ratio dtf / pytest = {dtf / med['pytest']:.2f}")


async def dispatch(tasks: int, workers: int, durable: bool = True, slots: int = 1) -> None:
    server = start_server(durable=durable)
    procs = []
    try:
        env = {**os.environ, "DTF_SERVER": server.url}
        procs.append(subprocess.Popen([PY, "-m", "dtf", "coordinator"], env=env))
        for i in range(workers):
            procs.append(
                subprocess.Popen(
                    [PY, "-m", "dtf", "worker", "--slots", str(slots), "--id", f"bench-{i}"],
                    env=env,
                )
            )
        started = time.perf_counter()
        subprocess.run(
            [PY, "-m", "dtf", "run", "--no-progress", "--command", "true", "--repeat", str(tasks)],
            env=env,
            stdout=subprocess.DEVNULL,
            check=True,
        )
        wall = time.perf_counter() - started
        store = await EventStore.connect(server.url)
        records = await store.load("dtf.evt.task.>", timeout=120)
        await store.close()
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        server.stop()
    queued: dict[str, float] = {}
    assigned: dict[str, TaskAssigned] = {}
    begun: dict[str, float] = {}
    completions: dict[str, list[float]] = {}
    for rec in records:
        e = rec.event
        if isinstance(e, TaskQueued):
            queued[e.task_id] = e.at
        elif isinstance(e, TaskAssigned):
            assigned[e.task_id] = e
        elif isinstance(e, TaskStarted):
            begun[e.task_id] = e.at
        elif isinstance(e, TaskCompleted):
            completions.setdefault(e.worker_id, []).append(e.at)
    for times in completions.values():
        times.sort()
    lat, q2a, a2s, s2c = [], [], [], []
    finished = {r.event.task_id: r.event.at for r in records if isinstance(r.event, TaskCompleted)}
    for task_id, start in begun.items():
        a = assigned[task_id]
        freed = [t for t in completions.get(a.worker_id, []) if t <= a.at]
        ready = max(queued[task_id], freed[-1] if freed else 0.0)
        lat.append(start - ready)
        q2a.append(a.at - queued[task_id])
        a2s.append(start - a.at)
        if task_id in finished:
            s2c.append(finished[task_id] - start)

    def pct(values: list[float]) -> str:
        arr = np.array(values) * 1000
        return f"p50 {np.percentile(arr, 50):6.2f} ms  p99 {np.percentile(arr, 99):6.2f} ms"

    fsync = "fsync before ack" if durable else "lazy fsync"
    print(
        f"\ndispatch ({fsync}): {len(begun)} trivial tasks on {workers} workers x {slots} slots "
        f"in {wall:.2f}s ({len(begun) / wall:.0f} tasks/s end to end)"
    )
    print(f"  dispatch (ready -> started)  {pct(lat)}   (goal p50 <= 5, p99 <= 25)")
    print(f"  queued -> assigned           {pct(q2a)}   (includes waiting for a slot)")
    print(f"  assigned -> started          {pct(a2s)}")
    print(f"  started -> completed         {pct(s2c)}   (running `true`, reporting)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("suite", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--skip-dispatch", action="store_true")
    args = parser.parse_args()
    if not args.suite.is_dir():
        sys.exit(f"not a directory: {args.suite}")
    if not args.skip_compare:
        compare(args.suite.resolve(), args.rounds, args.workers)
    if not args.skip_dispatch:
        asyncio.run(dispatch(args.tasks, args.workers, durable=True))
        asyncio.run(dispatch(args.tasks, args.workers, durable=False))


if __name__ == "__main__":
    main()
