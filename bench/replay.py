"""Full rebuild of the DuckDB read models from a stream of realistic events.

    python bench/replay.py [--events 1000000] [--keep DIR]

Starts a nats-server with a temp store, publishes N synthetic events (runs of pytest and
command tasks going queued -> assigned -> started -> completed/failed, with test cases,
failures, benchmark metrics and workers coming and going), then measures

  1. the raw read rate of nats-py's ordered push consumer with a callback that only counts
     messages (no decoding, no DuckDB), before and after the rebuild;
  2. the full rebuild, `projections.pipeline.projector.replay(rebuild=True)` into a new
     DuckDB file, in a child process (so its peak RSS is its own); the projector reads the
     stream through its own child process (`projections.pipeline.stream_reader`), whose peak
     RSS is shown apart;
  3. each stage of the rebuild alone, in another child process: the stream reader's process
     read to the end with nothing applied (its frames kept in memory), then the projector
     applying those frames from memory into another new file, the reader stopped by then;

and prints events, seconds, events/s, the ratio to the raw read rate and the peak RSS, and
the stages' rates and ratios.  Publishing speed is not measured.  Goal: >= 60,000 events/s
end to end, and 0.6 of the raw read rate.  On the 2-core dev VM the rebuild is bound by CPU:
the projector's process takes ~16 us an event (decoding frames, folding, row building,
DuckDB), its reader ~9 (reading and decoding) and the server ~3, while each stage alone,
given the machine, runs faster than the whole (see docs/architecture.md, "Read models").
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import random
import resource
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import nats.js.api

from dtf.nats.server import start_server
from dtf.nats.store import EventStore
from events import topology
from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    Category,
    Gpu,
    Metric,
    Requirements,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskStarted,
    WorkerDraining,
    WorkerLost,
    WorkerRegistered,
    WorkerStopped,
)
from events.codec import encode
from events.subjects import subject_of
from projections.pipeline.delivery import open_reader
from projections.pipeline.frames import Encoded, decode
from projections.pipeline.projector import FLUSH_INTERVAL_S, MAX_BATCH, Projector, replay

PUBLISH_WINDOW = 20_000
FAILURE_MESSAGES = (
    "AssertionError: assert {a} == {b}",
    "TimeoutError: request to http://10.0.{a}.{b}:8080/api took longer than 30s",
    "FileNotFoundError: [Errno 2] No such file or directory: '/tmp/run-{a}/out-{b}.json'",
    "RuntimeError: CUDA out of memory. Tried to allocate {a}.{b} GiB",
    "KeyError: 'user_{a}'",
    "ConnectionResetError: [Errno 104] Connection reset by peer (pid {a})",
)


def _workers(rng: random.Random, t: float) -> list[WorkerRegistered]:
    kinds = [
        ("linux", 8, 32.0, ()),
        ("linux", 32, 256.0, (Gpu("nvidia", "H100", 80.0),)),
        ("darwin", 10, 16.0, ()),
        ("linux", 16, 64.0, (Gpu("nvidia", "A10", 24.0), Gpu("nvidia", "A10", 24.0))),
    ]
    workers = []
    for i in range(24):
        plat, cpus, mem, gpus = kinds[i % len(kinds)]
        caps = Capabilities(plat, f"host-{i}", cpus, mem, "3.11.9", gpus, ("ci",) if i % 3 else ())
        workers.append(
            WorkerRegistered(
                id=f"w{i}-{rng.getrandbits(64):016x}",
                at=t,
                actor=f"worker-{i}",
                worker_id=f"worker-{i}",
                capabilities=caps,
                slots=4,
            )
        )
    return workers


def synthetic_events(count: int, seed: int = 7) -> Iterator[AnyEvent]:
    """About `count` realistic events, in an order the coordinator could have written them."""
    rng = random.Random(seed)
    t = 1_700_000_000.0
    n = 0
    serial = 0

    def eid() -> str:
        nonlocal serial
        serial += 1
        return f"{serial:032x}"

    workers = _workers(rng, t)
    for w in workers:
        yield w
        n += 1
    run_no = 0
    while n < count:
        run_no += 1
        run_id = f"run{run_no:06d}"
        command = run_no % 4 == 0
        n_tasks = rng.randint(20, 80)
        task_ids = tuple(f"{run_id}.{k}" for k in range(n_tasks))
        labels = {"commit": f"{run_no // 10:040x}", "branch": "main" if run_no % 5 else "dev"}
        yield RunSubmitted(
            id=eid(),
            at=t,
            actor="client@laptop",
            run_id=run_id,
            bundle=f"{run_no:064x}",
            root="/home/dev/project",
            args=("tests/",),
            task_ids=task_ids,
            total_cases=n_tasks * (1 if command else 4),
            labels=labels,
        )
        n += 1
        counts: dict[str, int] = {}
        for task_id in task_ids:
            t += 0.001
            nodeids = (
                () if command else tuple(f"tests/test_m{task_id}.py::test_{j}" for j in range(4))
            )
            yield TaskQueued(
                id=eid(),
                at=t,
                actor="client@laptop",
                task_id=task_id,
                run_id=run_id,
                kind="command" if command else "pytest",
                nodeids=nodeids,
                argv=("python", "bench.py", "--model", "bert") if command else (),
                requirements=Requirements(gpus=1) if command else Requirements(),
                expected_duration=0.5,
                bundle=f"{run_no:064x}",
                args=("tests/",),
            )
        n += n_tasks
        for task_id in task_ids:
            worker = rng.choice(workers)
            t += 0.002
            yield TaskAssigned(
                id=eid(), at=t, actor="coord-1", task_id=task_id, worker_id=worker.worker_id, term=3
            )
            yield TaskStarted(
                id=eid(),
                at=t + 0.001,
                actor=worker.worker_id,
                task_id=task_id,
                worker_id=worker.worker_id,
            )
            n += 3
            roll = rng.random()
            if roll < 0.01:
                # A lost worker or a broken environment: the first is retried elsewhere.
                category: Category = rng.choice(("infrastructure", "environment"))
                msg = rng.choice(FAILURE_MESSAGES).format(
                    a=rng.randint(0, 99), b=rng.randint(0, 99)
                )
                yield TaskFailed(
                    id=eid(),
                    at=t + 0.5,
                    actor="coord-1",
                    task_id=task_id,
                    worker_id=worker.worker_id,
                    category=category,
                    message=msg,
                    cases=tuple(CaseResult(nid, "error", message=msg) for nid in nodeids),
                    term=3,
                )
                n += 1
                if category == "environment":
                    counts["error"] = counts.get("error", 0) + max(1, len(nodeids))
                    continue
                yield TaskRetryScheduled(
                    id=eid(),
                    at=t + 0.6,
                    actor="coord-1",
                    task_id=task_id,
                    attempt=1,
                    avoid=(worker.worker_id,),
                    reason=msg,
                    term=3,
                )
                worker = rng.choice(workers)
                yield TaskAssigned(
                    id=eid(),
                    at=t + 0.7,
                    actor="coord-1",
                    task_id=task_id,
                    worker_id=worker.worker_id,
                    attempt=2,
                    term=3,
                )
                yield TaskStarted(
                    id=eid(),
                    at=t + 0.8,
                    actor=worker.worker_id,
                    task_id=task_id,
                    worker_id=worker.worker_id,
                    attempt=2,
                )
                n += 3
                attempt, done_at = 2, t + 1.3
            else:
                attempt, done_at = 1, t + 0.5
            if command:
                dims = {"model": "bert", "batch_size": str(rng.choice((1, 8, 32)))}
                results = (
                    Metric("latency_ms", rng.gauss(12.0, 0.5), "ms", "lower", dims),
                    Metric("throughput", rng.gauss(800.0, 20.0), "items/s", "higher", dims),
                )
                yield TaskCompleted(
                    id=eid(),
                    at=done_at,
                    actor=worker.worker_id,
                    task_id=task_id,
                    worker_id=worker.worker_id,
                    attempt=attempt,
                    duration=0.5,
                    cases=(CaseResult(f"command:{task_id}", "passed", 0.5),),
                    metrics={m.name: m.value for m in results},
                    results=results,
                )
                counts["passed"] = counts.get("passed", 0) + 1
                continue
            cases = []
            for nid in nodeids:
                if rng.random() < 0.03:
                    msg = rng.choice(FAILURE_MESSAGES).format(
                        a=rng.randint(0, 99), b=rng.randint(0, 99)
                    )
                    cases.append(
                        CaseResult(nid, "failed", rng.random(), msg, f"def test():\n>   {msg}")
                    )
                else:
                    cases.append(
                        CaseResult(nid, rng.choice(("passed", "passed", "skipped")), rng.random())
                    )
                counts[cases[-1].outcome] = counts.get(cases[-1].outcome, 0) + 1
            yield TaskCompleted(
                id=eid(),
                at=done_at,
                actor=worker.worker_id,
                task_id=task_id,
                worker_id=worker.worker_id,
                attempt=attempt,
                outcome="failed" if any(c.outcome == "failed" for c in cases) else "passed",
                duration=sum(c.duration for c in cases),
                cases=tuple(cases),
            )
        t += 1.0
        yield RunFinished(id=eid(), at=t, actor="coord-1", run_id=run_id, counts=counts, term=3)
        n += 1
        if run_no % 50 == 0:
            # Workers come and go: one drains, stops, or is lost, and comes back.
            w = rng.choice(workers)
            change = rng.choice(
                (
                    WorkerDraining(id=eid(), at=t, actor=w.worker_id, worker_id=w.worker_id),
                    WorkerStopped(id=eid(), at=t, actor=w.worker_id, worker_id=w.worker_id),
                    WorkerLost(
                        id=eid(),
                        at=t,
                        actor="coord-1",
                        worker_id=w.worker_id,
                        reason="heartbeat expired",
                        term=3,
                    ),
                )
            )
            yield change
            yield WorkerRegistered(
                id=eid(),
                at=t + 1,
                actor=w.worker_id,
                worker_id=w.worker_id,
                capabilities=w.capabilities,
                slots=w.slots,
            )
            n += 2


async def publish(url: str, count: int) -> int:
    """Publish about `count` synthetic events with their Nats-Msg-Id; returns how many."""
    store = await EventStore.connect(url, name="bench-publish")
    js = store.nc.jetstream(timeout=60, publish_async_max_pending=PUBLISH_WINDOW * 2)
    sent = 0
    pending: list[asyncio.Future] = []
    try:
        for event in synthetic_events(count):
            pending.append(
                await js.publish_async(
                    subject_of(event), encode(event), headers={"Nats-Msg-Id": event.id}
                )
            )
            sent += 1
            if len(pending) >= PUBLISH_WINDOW:
                # publish_async never resolves a rejected message's future (nats.py #985).
                await asyncio.wait_for(asyncio.gather(*pending), 60)
                pending.clear()
                print(f"\r  published {sent:,}", end="", file=sys.stderr, flush=True)
        await asyncio.wait_for(asyncio.gather(*pending), 60)
        stored = await store.last_seq()
    finally:
        await store.close()
    print(f"\r  published {sent:,} (stream holds {stored:,})", file=sys.stderr)
    return stored


async def raw_read(url: str, expected: int) -> float:
    """Seconds for nats-py's ordered push consumer with a callback to receive `expected`
    messages (the callback only counts them)."""
    store = await EventStore.connect(url, name="bench-raw")
    done = asyncio.Event()
    got = 0

    async def on_msg(msg) -> None:
        nonlocal got
        got += 1
        if got >= expected:
            done.set()

    started = time.perf_counter()
    sub = await store.js.subscribe(
        "dtf.evt.>",
        stream=topology.EVENTS_STREAM,
        cb=on_msg,
        ordered_consumer=True,
        config=nats.js.api.ConsumerConfig(
            deliver_policy=nats.js.api.DeliverPolicy.BY_START_SEQUENCE, opt_start_seq=1
        ),
        pending_msgs_limit=1_000_000,
        pending_bytes_limit=1 << 30,
    )
    await asyncio.wait_for(done.wait(), 600)
    elapsed = time.perf_counter() - started
    await sub.unsubscribe()
    await store.close()
    return elapsed


def rebuild_child(url: str, db: Path) -> None:
    """Run in a child process: rebuild `db` and print the stats and this process's peak RSS."""

    def progress(done: int, total: int) -> None:
        print(f"\r  applied {done:,} / {total:,}", end="", file=sys.stderr, flush=True)

    stats = asyncio.run(replay([url], db, rebuild=True, on_progress=progress))
    print(file=sys.stderr)
    # ru_maxrss is in KiB on Linux; the only child is the stream reader, waited for by now.
    own = resource.getrusage(resource.RUSAGE_SELF)
    reader = resource.getrusage(resource.RUSAGE_CHILDREN)
    usage = {
        "peak_rss_mb": own.ru_maxrss / 1024,
        "reader_peak_rss_mb": reader.ru_maxrss / 1024,
        "cpu_s": own.ru_utime + own.ru_stime,
        "reader_cpu_s": reader.ru_utime + reader.ru_stime,
    }
    print(json.dumps({**dataclasses.asdict(stats), **usage}))


async def read_alone(url: str, expected: int) -> tuple[float, list[Encoded]]:
    """Seconds for the projector's stream reader process to deliver `expected` events, taken
    as they come and applied to nothing, and its frames."""
    started = time.perf_counter()
    reader = await open_reader([url], 1)
    frames: list[Encoded] = []
    got = 0
    try:
        while got < expected:
            await reader.wait(1, FLUSH_INTERVAL_S)
            taken = reader.take(MAX_BATCH)
            frames += taken
            got += sum(frame.messages for frame in taken)
    finally:
        await reader.stop()
    return time.perf_counter() - started, frames


def apply_alone(frames: list[Encoded], db: Path) -> float:
    """Seconds for a rebuilding projector to apply `frames` from memory, in batches as
    `replay` takes them (whole frames, up to MAX_BATCH events; each COMMIT overlapping the
    next batch but the last), then checkpoint the file."""
    batches: list[list[Encoded]] = [[]]
    count = 0  # events in the last batch
    for frame in frames:
        if batches[-1] and count + frame.messages > MAX_BATCH:
            batches.append([])
            count = 0
        batches[-1].append(frame)
        count += frame.messages
    started = time.perf_counter()
    with Projector(db, rebuilding=True) as projector:
        for i, batch in enumerate(batches):
            projector.apply(decode(batch), overlap=i < len(batches) - 1)
        projector.checkpoint()
    return time.perf_counter() - started


def stages_child(url: str, db: Path, expected: int) -> None:
    """Run in a child process: each stage of a rebuild alone; prints their seconds."""
    read_s, frames = asyncio.run(read_alone(url, expected))
    apply_s = apply_alone(frames, db)
    db.unlink()  # only timed: the rebuild's file is the one to look at
    print(json.dumps({"read_s": read_s, "apply_s": apply_s}))


async def _child(*args: str) -> dict:
    """Run this script with `args` in a child process; its last line of output, as JSON."""
    child = await asyncio.create_subprocess_exec(
        sys.executable, __file__, *args, stdout=asyncio.subprocess.PIPE
    )
    out, _ = await child.communicate()
    if child.returncode != 0:
        raise SystemExit(f"{args[0]} failed (exit {child.returncode})")
    return json.loads(out.decode().strip().splitlines()[-1])


async def main_async(count: int, keep: Path | None) -> None:
    work = Path(tempfile.mkdtemp(prefix="dtf-bench-replay-")) if keep is None else keep
    # A throwaway store: no fsync per write (the read side, which is measured, is the same).
    server = start_server(store_dir=work / "js", durable=False)
    db = work / "bench.duckdb"
    try:
        print(f"generating {count:,} events into {server.url} ...", file=sys.stderr)
        stored = await publish(server.url, count)
        print("reading it raw with nats-py ...", file=sys.stderr)
        raw_s = [await raw_read(server.url, stored)]
        print("rebuilding the read models ...", file=sys.stderr)
        # A child process, so that the peak RSS is the projector's alone.
        stats = await _child("--rebuild-child", server.url, str(db))
        print("each stage alone: the reader, then the projector ...", file=sys.stderr)
        stages = await _child(
            "--stages-child", server.url, str(work / "stages.duckdb"), str(stored)
        )
        # Again after: this machine's speed drifts under sustained load, so the peer is
        # measured on both sides of the rebuild.
        print("reading it raw with nats-py again ...", file=sys.stderr)
        raw_s.append(await raw_read(server.url, stored))
        db_mib = db.stat().st_size / 2**20
    finally:
        server.stop()
        if keep is None:  # a million events' store and its files: ~700 MiB
            shutil.rmtree(work, ignore_errors=True)
    events = stats["applied"] + stats["rejected"]
    rate = events / stats["seconds"]
    raw_rates = [stored / seconds for seconds in raw_s]
    nats_py_rate = sum(raw_rates) / len(raw_rates)
    print(f"events            {events:,} (rejected {stats['rejected']:,})")
    print(f"seconds           {stats['seconds']:.2f} (stream -> DuckDB file, incl. the swap)")
    print(f"events/s          {rate:,.0f}   (goal >= 60,000)")
    print(
        f"raw read nats-py  {nats_py_rate:,.0f} events/s ordered consumer + callback, no decoding"
        f" ({' before, '.join(f'{r:,.0f}' for r in raw_rates)} after)"
    )
    print(f"ratio             {rate / nats_py_rate:.2f} of nats-py's raw read rate (mean)")
    for stage, seconds in (("reader", stages["read_s"]), ("projector", stages["apply_s"])):
        alone = stored / seconds
        print(
            f"{stage + ' alone':<17} {alone:,.0f} events/s, {alone / nats_py_rate:.2f} of raw"
            + (" (its frames from memory)" if stage == "projector" else " (applying nothing)")
        )
    print(
        f"peak RSS          {stats['peak_rss_mb']:,.0f} MiB the projector,"
        f" {stats['reader_peak_rss_mb']:,.0f} MiB its stream reader process"
    )
    print(
        f"CPU               {stats['cpu_s']:.1f} s the projector, {stats['reader_cpu_s']:.1f} s"
        f" its reader ({stats['cpu_s'] / events * 1e6:.1f} and"
        f" {stats['reader_cpu_s'] / events * 1e6:.1f} us an event)"
    )
    print(f"duckdb file       {db_mib:,.0f} MiB" + (f" at {db}" if keep is not None else ""))
    print(f"machine           {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--keep", type=Path, help="work directory to keep (default: a temp dir)")
    parser.add_argument("--rebuild-child", nargs=2, metavar=("URL", "DB"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--stages-child", nargs=3, metavar=("URL", "DB", "N"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.rebuild_child:
        rebuild_child(args.rebuild_child[0], Path(args.rebuild_child[1]))
        return
    if args.stages_child:
        url, db, expected = args.stages_child
        stages_child(url, Path(db), int(expected))
        return
    asyncio.run(main_async(args.events, args.keep))


if __name__ == "__main__":
    main()
