"""`dtf status`, `dtf show` and `dtf events tail`: views read straight from the stream.

They fold the stream with the same core the coordinator uses, so they work with no
coordinator running and show exactly what the log says.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time

from rich.console import Console
from rich.table import Table

from dtf.cli.worker_view import context_lines, print_worker
from dtf.core.describe import describe
from dtf.core.state import View
from dtf.errors import ConfigError, StoreError
from dtf.nats.store import EventStore, Recorded, Stored
from events.catalogue import CaseResult, TaskCompleted, TaskFailed
from events.subjects import (
    ROOT,
    run_subject,
    run_tasks,
    task_subject,
    valid_task_id,
    valid_token,
    worker_subject,
)


async def _with_store(urls: list[str], name: str):
    return await EventStore.connect(urls, name=name, timeout=3.0)


async def status(urls: list[str], console: Console) -> int:
    store = await _with_store(urls, "dtf-status")
    try:
        records = await store.load(f"{ROOT}.>", timeout=60)
        alive: set[str] = set()
        with contextlib.suppress(StoreError):
            alive = await store.live_workers()
        leader: str | None = "unknown"
        with contextlib.suppress(StoreError):
            leader = await store.leader()
    finally:
        await store.close()
    view = View()
    for rec in records:
        view.fold(rec)
    workers = Table(title="workers", title_justify="left")
    for col in (
        "id",
        "status",
        "beat",  # the heartbeat: "ok" while its key lives
        "slots",
        "busy",
        "host",
        "cpus",
        "mem GB",
        "gpus",
        "labels",
    ):
        # The id and status are what an operator acts on: never cut them short ("disabl…").
        keep = col in ("id", "status")
        workers.add_column(col, no_wrap=keep, min_width=11 if col == "status" else None)
    for w in sorted(view.workers.values(), key=lambda w: w.worker_id):
        if w.status == "stopped":
            continue
        caps = w.registered.capabilities
        workers.add_row(
            w.worker_id,
            w.status,
            "ok" if w.worker_id in alive else "-",
            str(w.slots),
            str(len(view.active.get(w.worker_id, ()))),
            caps.hostname,
            str(caps.cpus),
            f"{caps.memory_gb:g}",
            str(len(caps.gpus)),
            ",".join(caps.labels),
        )
    console.print(workers)
    console.print(
        f"coordinator: {leader}"
        if leader
        else "coordinator: none leads; start one with: dtf coordinator --server URL"
    )
    queued = view.queued()
    running = [t for t in view.tasks.values() if t.status in ("assigned", "running")]
    console.print(f"queue: {len(queued)} task(s) waiting; {len(running)} assigned or running")
    if running:
        table = Table(title="running", title_justify="left")
        for col in ("task", "status", "worker", "for", "tests"):
            table.add_column(col)
        now = time.time()
        for t in sorted(running, key=lambda t: t.assigned_at):
            since = t.started_at or t.assigned_at
            table.add_row(
                t.task_id, t.status, t.worker_id, f"{now - since:.1f}s", str(len(t.spec.nodeids))
            )
        console.print(table)
    open_runs = [r for r in view.runs.values() if r.finished is None]
    console.print(f"runs: {len(view.runs)} known, {len(open_runs)} in progress")
    if view.rejected:
        console.print(
            f"stream: {view.rejected} message(s) rejected (unreadable, or refused for their "
            f"signature or signer), the latest at seq {view.rejections[-1].seq} on "
            f"{view.rejections[-1].subject}; `dtf show all` lists them as REJECTED, "
            "`dtf audit verify` counts them"
        )
    return 0


async def show(
    urls: list[str],
    kind: str,
    ident: str | None,
    console: Console,
    *,
    since: float | None = None,
    until: float | None = None,
) -> int:
    """Print an aggregate's events (or all events with kind 'all') within [since, until]."""
    if kind == "all":
        if ident:
            raise ConfigError("dtf show all takes no id (use --since/--until)")
        subjects = [f"{ROOT}.>"]
    else:
        if not ident:
            raise ConfigError(f"dtf show {kind} needs an id")
        if kind == "task" and not valid_task_id(ident):
            raise ConfigError(f"not a task id: {ident!r} (task ids look like <run id>.<n>)")
        if kind != "task" and not valid_token(ident):
            raise ConfigError(f"not a {kind} id: {ident!r}")
        subjects = {
            "run": [run_subject(ident), run_tasks(ident)],
            "task": [task_subject(ident)],
            "worker": [worker_subject(ident)],
        }[kind]
    store = await _with_store(urls, "dtf-show")
    try:
        records = await store.load(subjects, timeout=120)
        # A worker's failures are on its tasks' subjects: the error history reads them all.
        failures = (
            await store.load(f"{ROOT}.task.*.*.failed", timeout=120) if kind == "worker" else []
        )
    finally:
        await store.close()
    view = View()  # judges signers as the coordinator does: a forgery shows as REJECTED
    records = [
        r
        for r in map(view.judge, records)
        if (since is None or r.at >= since) and (until is None or r.at <= until)
    ]
    if not records:
        what = "in that time range" if kind == "all" else f"for {kind} {ident}"
        raise ConfigError(f"no events {what}")
    for rec in records:
        console.print(describe(rec), markup=False, highlight=False)
    if kind == "task":
        for rec in records:
            if isinstance(rec, Recorded) and isinstance(rec.event, TaskCompleted | TaskFailed):
                _print_cases(console, rec.event.cases)
                if isinstance(rec.event, TaskFailed) and rec.event.context is not None:
                    console.print(f"  system context (attempt {rec.event.attempt}):")
                    for line in context_lines(rec.event.context):
                        console.print(f"    {line}", markup=False, highlight=False)
    if kind == "worker" and ident:
        mine = [
            r.event
            for r in map(view.admit, failures)
            if isinstance(r, Recorded)
            and isinstance(r.event, TaskFailed)
            and r.event.worker_id == ident
            and (since is None or r.at >= since)
            and (until is None or r.at <= until)
        ]
        print_worker(console, view.workers.get(ident), mine)
    return 0


def _print_cases(console: Console, cases: tuple[CaseResult, ...]) -> None:
    for case in cases:
        line = f"    {case.outcome:<8} {case.duration:7.3f}s {case.nodeid}"
        if case.message:
            line += f"  - {case.message}"
        console.print(line, markup=False, highlight=False)


async def tail(
    urls: list[str], console: Console, *, from_start: bool, last: int, subject: str
) -> int:
    store = await _with_store(urls, "dtf-tail")
    try:
        start = 1 if from_start else max(1, await store.last_seq() - last + 1)

        view = View()  # judges signers as the coordinator does (from where the tail starts)

        def printer(rec: Stored) -> None:
            console.print(describe(view.judge(rec)), markup=False, highlight=False)

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        follower = await store.follow(subject, printer, from_seq=start)
        try:
            await stop.wait()  # Ctrl-C ends a tail normally
        finally:
            await follower.stop()
    finally:
        await store.close()
    return 0
