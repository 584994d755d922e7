"""The dashboard under a fleet's load: 1,000 simulated workers and 500 events/s.

    python bench/dashboard.py [--workers 1000] [--rate 500] [--seconds 60]
                              [--panes overview,workers] [--beat-every 0.5] [--size 120x40]

Starts a nats-server with a temp store, registers the workers, then starts the real
`Dashboard` (with its real `Feed`) in a child process on a pseudo-terminal of the given size,
so every frame is really rendered and written to a terminal (the bench reads and discards
what it writes).  Once the dashboard has caught up, the bench publishes for `--seconds` on
each pane: events at `--rate` per second (runs of 250 tasks going queued -> assigned ->
started -> completed, 2 % with a failing test, some infrastructure failures), each stamped
with the time it was published, and a heartbeat from every worker every `--beat-every`
seconds (the workers' real interval by default: 2,000 key-value puts a second for 1,000
workers).  Keys are sent through the terminal to switch panes, and `q` ends it.

Printed per pane: events and heartbeats per second actually published; frames per second
(screen updates written to the terminal) and bytes per second; the dashboard process's CPU
share of one core and its RSS (peak); and the lag from an event's publication to the end of
the first screen refresh after it was folded, p50/p99/max.  Goals: lag p99 <= 1 s,
RSS <= 200 MB, CPU <= 50 % of one core.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import json
import logging
import os
import random
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import msgspec
import psutil

from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events.api import Heartbeat
from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    Gpu,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskStarted,
    WorkerRegistered,
)

RUN_TASKS = 250
COORDINATOR = "coord-bench"
TERM = 1
PANE_KEYS = {"overview": b"1", "workers": b"2", "runs": b"3", "errors": b"4", "topology": b"6"}
GOALS = {"lag_p99_s": 1.0, "rss_mb": 200.0, "cpu_percent": 50.0}


# --- the simulated fleet ---------------------------------------------------------------


def registrations(n: int, at: float) -> list[WorkerRegistered]:
    kinds = [
        ("linux", 8, 31.3, (), ("ci",)),
        ("linux", 32, 251.5, (Gpu("nvidia", "NVIDIA H100 80GB HBM3", 80.0),), ("gpu",)),
        ("darwin", 10, 16.0, (), ()),
        ("linux", 16, 62.8, (Gpu("nvidia", "NVIDIA A10", 24.0),) * 2, ("gpu", "ci")),
    ]
    out = []
    for i in range(n):
        plat, cpus, mem, gpus, labels = kinds[i % len(kinds)]
        caps = Capabilities(plat, f"host-{i:04d}", cpus, mem, "3.11.7", gpus, labels)
        out.append(
            WorkerRegistered(
                id=uuid.uuid4().hex,
                at=at,
                actor=f"w{i:04d}",
                worker_id=f"w{i:04d}",
                capabilities=caps,
                slots=2,
            )
        )
    return out


def task_events(workers: list[str], seed: int = 11) -> Iterator[AnyEvent]:
    """Runs, one after another, forever; each event's `at` is set when it is published."""
    rng = random.Random(seed)
    run_no = 0
    next_worker = 0
    while True:
        run_no += 1
        run_id = f"bench-{run_no:05d}"
        task_ids = tuple(f"{run_id}.{k}" for k in range(RUN_TASKS))
        yield RunSubmitted(
            id=uuid.uuid4().hex,
            at=0.0,
            actor="client@bench",
            run_id=run_id,
            task_ids=task_ids,
            total_cases=RUN_TASKS * 4,
            args=("tests",),
            root="/src/app",
            labels={"commit": f"{run_no:07x}", "branch": "main"},
        )
        placed = {}
        for task_id in task_ids:
            nodeids = tuple(f"tests/test_{task_id}.py::test_{j}" for j in range(4))
            placed[task_id] = (workers[next_worker % len(workers)], nodeids)
            next_worker += 1
            yield TaskQueued(
                id=uuid.uuid4().hex,
                at=0.0,
                actor="client@bench",
                task_id=task_id,
                run_id=run_id,
                kind="pytest",
                nodeids=nodeids,
            )
        for task_id, (worker, _) in placed.items():
            yield TaskAssigned(
                id=uuid.uuid4().hex,
                at=0.0,
                actor=COORDINATOR,
                task_id=task_id,
                worker_id=worker,
                term=TERM,
            )
            yield TaskStarted(
                id=uuid.uuid4().hex, at=0.0, actor=worker, task_id=task_id, worker_id=worker
            )
        counts: dict[str, int] = {}
        for task_id, (worker, nodeids) in placed.items():
            roll = rng.random()
            if roll < 0.004:
                yield TaskFailed(
                    id=uuid.uuid4().hex,
                    at=0.0,
                    actor=COORDINATOR,
                    task_id=task_id,
                    worker_id=worker,
                    category=rng.choice(("infrastructure", "timeout")),
                    message="worker stopped answering",
                    cases=tuple(CaseResult(n, "error", message="lost") for n in nodeids),
                    term=TERM,
                )
                counts["error"] = counts.get("error", 0) + len(nodeids)
                continue
            failing = roll < 0.02
            cases = tuple(
                CaseResult(n, "failed" if failing and j == 0 else "passed", 0.1 + j / 10)
                for j, n in enumerate(nodeids)
            )
            for c in cases:
                counts[c.outcome] = counts.get(c.outcome, 0) + 1
            yield TaskCompleted(
                id=uuid.uuid4().hex,
                at=0.0,
                actor=worker,
                task_id=task_id,
                worker_id=worker,
                duration=1.0,
                outcome="failed" if failing else "passed",
                exit_code=1 if failing else 0,
                cases=cases,
            )
        yield RunFinished(
            id=uuid.uuid4().hex, at=0.0, actor=COORDINATOR, run_id=run_id, counts=counts, term=TERM
        )


class Load:
    """Publishes events at a rate and every worker's heartbeat at an interval; counts both."""

    def __init__(self, store: EventStore, workers: list[str], rate: float, beat_every: float):
        self.store = store
        self.workers = workers
        self.rate = rate
        self.beat_every = beat_every
        self.events = task_events(workers)
        self.published = 0
        self.beats = 0
        self.server = (store.connected_to or "").removeprefix("nats://")

    async def run(self, seconds: float) -> None:
        await asyncio.gather(self._events(seconds), self._beats(seconds))

    async def _events(self, seconds: float) -> None:
        start = time.time()
        sent = 0
        while (now := time.time()) < start + seconds:
            due = int((now - start) * self.rate) - sent
            if due > 0:
                batch = [next(self.events) for _ in range(due)]
                stamped = [msgspec.structs.replace(e, at=time.time()) for e in batch]
                await self.store.append_many(stamped)
                sent += due
                self.published += due
            await asyncio.sleep(0.01)

    async def _beats(self, seconds: float) -> None:
        """Every worker once per interval, spread over it in ten slices (as real workers
        beat on their own clocks)."""
        kv = await self.store.heartbeats()
        rng = random.Random(5)
        slices = 10
        start = time.time()
        k = 0
        while time.time() < start + seconds:
            part = self.workers[k % slices :: slices]
            beat_at = time.time()
            await asyncio.gather(
                *(
                    kv.put(
                        w,
                        msgspec.json.encode(
                            Heartbeat(
                                beat_at,
                                cpu=rng.uniform(5, 95),
                                memory=rng.uniform(20, 80),
                                server=self.server,
                            )
                        ),
                    )
                    for w in part
                )
            )
            self.beats += len(part)
            k += 1
            wait = start + k * self.beat_every / slices - time.time()
            if wait > 0:
                await asyncio.sleep(wait)


# --- the dashboard, in the child process ----------------------------------------------


def child(url: str, out: Path, ready: Path, workers: int) -> None:
    """Run the real dashboard on this terminal, timing what it shows; write the times to
    `out` when it quits."""
    from textual.screen import Screen

    from events.records import Recorded
    from tui.alerts.player import Player
    from tui.app import Dashboard
    from tui.feed import Feed
    from tui.fleet import Fleet

    folded: list[float] = []  # publication times of events folded since the last tick
    lags: list[tuple[float, float]] = []  # (published, on screen)
    frames: list[float] = []
    view_judge = None

    class Timed(Dashboard):
        def tick(self) -> None:
            batch = folded[:]
            folded.clear()
            super().tick()
            self.call_after_refresh(self._shown, batch)

        def _shown(self, batch: list[float]) -> None:
            now = time.time()
            lags.extend((at, now) for at in batch)
            if (
                not ready.exists()
                and self.fleet.caught_up
                and len(self.fleet.view.workers) >= workers
            ):
                ready.write_text("ready")

        def _display(self, screen: Screen, renderable) -> None:  # a frame written out
            if renderable is not None:
                frames.append(time.time())
            super()._display(screen, renderable)

    async def main() -> None:
        nonlocal view_judge
        fleet = Fleet(started_at=time.time())
        view_judge = fleet.view.judge

        def judge(rec):
            rec = view_judge(rec)
            if isinstance(rec, Recorded) and rec.event.at > 0:
                folded.append(rec.event.at)
            return rec

        fleet.view.judge = judge  # type: ignore[method-assign]
        feed = await Feed.connect([url], fleet)
        app = Timed(fleet, feed=feed, player=Player(bell=lambda: None, commands=[], muted=True))
        await app.run_async()

    # The terminal is the app's: what goes wrong is written to a log beside the timings.
    logging.basicConfig(filename=out.with_name("child.log"), level=logging.WARNING)
    try:
        asyncio.run(main())
    except BaseException:
        logging.exception("the dashboard failed")
        raise
    out.write_text(json.dumps({"lags": lags, "frames": frames}))


# --- the bench, in the parent ----------------------------------------------------------


class Terminal:
    """A pseudo-terminal the child draws on; its output is read and counted, not kept."""

    def __init__(self, cols: int, rows: int) -> None:
        self.master, self.slave = os.openpty()
        fcntl.ioctl(self.slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.bytes: list[tuple[float, int]] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:
                return
            if not chunk:
                return
            self.bytes.append((time.time(), len(chunk)))

    def send(self, keys: bytes) -> None:
        os.write(self.master, keys)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def wait_for(path: Path, process: subprocess.Popen, within: float, what: str) -> None:
    deadline = time.monotonic() + within
    while not path.exists():
        if process.poll() is not None:
            raise SystemExit(f"the dashboard exited ({process.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise SystemExit(f"the dashboard did not get to {what} within {within:.0f} s")
        await asyncio.sleep(0.1)


async def sample(proc: psutil.Process, rss: list[int], stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            rss.append(proc.memory_info().rss)
        except psutil.NoSuchProcess:
            return
        await asyncio.sleep(0.25)


async def bench(args: argparse.Namespace, folder: Path) -> list[dict]:
    server = start_server(store_dir=folder / "nats")
    term = None
    process = None
    try:
        store = await EventStore.connect([server.url])
        await store.ensure_topology()
        regs = registrations(args.workers, time.time())
        await store.append_many(regs)
        workers = [r.worker_id for r in regs]
        # The lease held by a simulated coordinator, so the overview has a leader to show.
        claim = await store.lease(COORDINATOR, ttl=3600.0)
        await claim.step()

        cols, rows = (int(x) for x in args.size.split("x"))
        term = Terminal(cols, rows)
        out, ready = folder / "times.json", folder / "ready"
        env = dict(os.environ, TERM="xterm-256color", COLUMNS=str(cols), LINES=str(rows))
        env["XDG_CACHE_HOME"] = str(folder / "cache")
        started = time.time()
        process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--child",
                server.url,
                str(out),
                str(ready),
                "--workers",
                str(args.workers),
            ],
            stdin=term.slave,
            stdout=term.slave,
            stderr=term.slave,  # Textual draws on stderr
            start_new_session=True,
            env=env,
        )
        await wait_for(ready, process, 120, "catching up")
        print(
            f"dashboard up and caught up with {args.workers} workers in "
            f"{time.time() - started:.1f} s",
            flush=True,
        )
        proc = psutil.Process(process.pid)
        windows = []
        load = Load(store, workers, args.rate, args.beat_every)
        for pane in args.panes:
            term.send(PANE_KEYS[pane])
            rss: list[int] = []
            stop = asyncio.Event()
            sampler = asyncio.create_task(sample(proc, rss, stop))
            cpu0, t0 = proc.cpu_times(), time.time()
            ev0, beats0 = load.published, load.beats
            await load.run(args.seconds)
            cpu1, t1 = proc.cpu_times(), time.time()
            stop.set()
            await sampler
            windows.append(
                {
                    "pane": pane,
                    "t0": t0,
                    "t1": t1,
                    "events": load.published - ev0,
                    "beats": load.beats - beats0,
                    "cpu": (cpu1.user + cpu1.system - cpu0.user - cpu0.system) / (t1 - t0),
                    "rss_peak": max(rss) if rss else 0,
                }
            )
            print(f"  {pane}: {args.seconds:.0f} s done", flush=True)
        # Let the last events reach the screen before quitting.
        await asyncio.sleep(1.5)
        term.send(b"q")
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            raise SystemExit("the dashboard did not quit on q within 30 s") from None
        if not out.exists():
            raise SystemExit(f"the dashboard left no timings: see {folder / 'child.log'}")
        times = json.loads(out.read_text())
        await store.close()
    finally:
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        server.stop()
    for w in windows:
        t0, t1 = w["t0"], w["t1"]
        span = t1 - t0
        lag = [shown - at for at, shown in times["lags"] if t0 <= at <= t1]
        w["lags"] = len(lag)
        w["lag_p50"] = percentile(lag, 0.50)
        w["lag_p99"] = percentile(lag, 0.99)
        w["lag_max"] = max(lag) if lag else float("nan")
        w["fps"] = sum(1 for at in times["frames"] if t0 <= at < t1) / span
        w["bytes_s"] = sum(n for at, n in term.bytes if t0 <= at < t1) / span
        w["span"] = span
    return windows


def report(args: argparse.Namespace, windows: list[dict]) -> bool:
    print()
    print(
        f"{args.workers} workers, {args.rate:g} events/s asked, a heartbeat per worker every "
        f"{args.beat_every:g} s, terminal {args.size}, {args.seconds:g} s per pane"
    )
    head = (
        f"{'pane':<10}{'events/s':>10}{'beats/s':>9}{'fps':>6}{'KiB/s':>8}"
        f"{'CPU %':>7}{'RSS MB':>8}{'lag p50':>9}{'p99':>7}{'max':>7}"
    )
    print(head)
    ok = True
    for w in windows:
        rss_mb = w["rss_peak"] / 1e6
        cpu = 100 * w["cpu"]
        print(
            f"{w['pane']:<10}{w['events'] / w['span']:>10.0f}{w['beats'] / w['span']:>9.0f}"
            f"{w['fps']:>6.1f}{w['bytes_s'] / 1024:>8.1f}{cpu:>7.1f}{rss_mb:>8.1f}"
            f"{w['lag_p50']:>8.2f}s{w['lag_p99']:>6.2f}s{w['lag_max']:>6.2f}s"
        )
        ok &= w["lag_p99"] <= GOALS["lag_p99_s"]
        ok &= rss_mb <= GOALS["rss_mb"] and cpu <= GOALS["cpu_percent"]
    print(
        f"goals: lag p99 <= {GOALS['lag_p99_s']:g} s, RSS <= {GOALS['rss_mb']:g} MB, "
        f"CPU <= {GOALS['cpu_percent']:g} % of one core: {'met' if ok else 'NOT met'}"
    )
    lags = statistics.fmean(w["lags"] / max(1, w["events"]) for w in windows)
    print(f"(events timed on screen: {100 * lags:.0f} % of those published)")
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--workers", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=500.0, help="events per second")
    parser.add_argument("--seconds", type=float, default=60.0, help="per pane")
    parser.add_argument("--panes", default="overview,workers", help="comma-separated")
    parser.add_argument("--beat-every", type=float, default=0.5, help="seconds per heartbeat")
    parser.add_argument("--size", default="120x40", help="terminal COLSxROWS")
    parser.add_argument("--child", nargs=3, metavar=("URL", "OUT", "READY"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        url, out, ready = args.child
        child(url, Path(out), Path(ready), args.workers)
        return
    args.panes = [p.strip() for p in args.panes.split(",") if p.strip()]
    unknown = [p for p in args.panes if p not in PANE_KEYS]
    if unknown:
        parser.error(f"--panes: unknown {', '.join(unknown)} (choose from {', '.join(PANE_KEYS)})")
    with tempfile.TemporaryDirectory(prefix="dtf-bench-dashboard-") as tmp:
        windows = asyncio.run(bench(args, Path(tmp)))
    sys.exit(0 if report(args, windows) else 1)


if __name__ == "__main__":
    main()
