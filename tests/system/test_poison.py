"""Poison messages: garbage on every subject of a live run, on the plan subject and in the KV
buckets, through real processes.  One unreadable message must never freeze a run, stall a
reader, or keep a coordinator or worker from starting or stopping."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import msgspec
import pytest

from dtf.nats.lease import LEADER_BUCKET
from dtf.nats.store import EventStore, Recorded, Rejected, Stored
from events import topology
from events.api import PLAN_SUBJECT, PlanReply
from events.catalogue import RunSubmitted, TaskQueued, TaskStarted
from tests.support.audit import check_exactly_once
from tests.support.cluster import PY, Cluster, project
from tests.support.polling import eventually

SUITE = {
    f"test_p{m}.py": "import time, pytest\n\n@pytest.mark.parametrize('n', range(3))\n"
    "def test_p(n):\n    time.sleep(0.2)\n"
    for m in range(6)
}
# One of each kind of garbage: random bytes, truncated JSON, the wrong schema, nesting deep
# enough to exhaust the recursion limit, and a readable event missing its required fields.
POISON = (
    os.urandom(48),
    b'{"type": "task.completed", "id": "p", "at": 1',
    b'{"type": "task.completed", "id": 5, "at": "never"}',
    b'{"a":' * 20_000,
    b'{"type": "run.finished", "id": "p", "at": 1, "actor": "x"}',
    b"x",
)
BIG = os.urandom(7 * 1024 * 1024)  # under the server's 8 MB max_payload
TASK_SUBJECTS = (
    "queued",
    "started",
    "completed",
    "failed",
    "cancelled",
    "retry_scheduled",
    "checkpointed",
    "superseded",
    "assigned.w1",
    "assigned.w2",
    "no.such.event",
)
RUN_SUBJECTS = ("submitted", "cancel_requested", "finished", "odd")


def stored(url: str) -> list[Stored]:
    async def load() -> list[Stored]:
        store = await EventStore.connect(url)
        try:
            return await store.load("dtf.evt.>", timeout=60)
        finally:
            await store.close()

    return asyncio.run(load())


def events_of(url: str, cls: type) -> list:
    return [r.event for r in stored(url) if isinstance(r, Recorded) and isinstance(r.event, cls)]


def publish(url: str, messages: list[tuple[str, bytes]]) -> None:
    """Publish raw messages into the event stream, as any NATS client could."""

    async def go() -> None:
        store = await EventStore.connect(url)
        try:
            for subject, data in messages:
                await store.js.publish(subject, data, timeout=30)
        finally:
            await store.close()

    asyncio.run(go())


def cli(url: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "dtf", *args, "--server", url],
        capture_output=True,
        text=True,
        timeout=timeout,  # a bound on hanging: status once took 60 s on one deep message
    )


def poison_cycle() -> Iterator[bytes]:
    return itertools.cycle(POISON)


def test_poison_on_every_subject_of_a_live_run(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, SUITE)
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    cluster.worker("w2")
    run = cluster.run(root, ".", "--split", "test", "--json", "r.json")
    url = cluster.url
    [submitted] = eventually(lambda: events_of(url, RunSubmitted), timeout=60, interval=0.1)
    run_id, tasks = submitted.run_id, submitted.task_ids
    eventually(lambda: len(events_of(url, TaskQueued)) == len(tasks), timeout=60, interval=0.1)
    eventually(lambda: events_of(url, TaskStarted), timeout=60, interval=0.1)
    garbage = poison_cycle()
    messages = [
        (f"dtf.evt.task.{task}.{suffix}", next(garbage))
        for task in tasks
        for suffix in TASK_SUBJECTS
    ]
    messages += [(f"dtf.evt.run.{run_id}.{suffix}", next(garbage)) for suffix in RUN_SUBJECTS]
    messages.insert(len(messages) // 2, (f"dtf.evt.task.{tasks[-1]}.completed", BIG))
    messages.append((f"dtf.evt.run.{run_id}.finished", BIG))
    publish(url, messages)

    out, err = run.communicate(timeout=240)
    report = json.loads((root / "r.json").read_text())
    assert run.returncode == 0, (out[-2000:], err[-2000:])
    assert report["counts"] == {"passed": 18}
    assert f"note: {len(messages)} message(s) on this run's subjects" in out

    log = stored(url)
    view = check_exactly_once(log, run_id)
    assert view.rejected == len(messages)
    assert {r.subject for r in log if isinstance(r, Rejected)} == {s for s, _ in messages}

    shown = cli(url, "show", "run", run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.count("REJECTED") == len(messages)

    status = cli(url, "status")
    assert status.returncode == 0 and status.stderr == "", status.stderr
    assert f"stream: {len(messages)} message(s) rejected (unreadable" in status.stdout
    assert "runs: 1 known, 0 in progress" in status.stdout
    assert len(status.stdout.splitlines()) < 40  # a count, not a warning per message


def test_poison_last_in_the_stream_stops_no_one(cluster: Cluster, tmp_path: Path) -> None:
    """Deep nesting as the last message: a coordinator starts and leads, `dtf status`
    answers, a run completes, and a worker still drains on SIGTERM."""
    url = cluster.url
    publish(url, [("dtf.evt.task.r0.0.completed", POISON[3]), ("dtf.evt.run.r0.finished", b"x")])
    coordinator = cluster.start("coordinator", "coordinator")
    log = tmp_path / "coordinator.log"
    eventually(lambda: "2 unreadable messages" in log.read_text(), timeout=60)
    worker = cluster.worker("w1")
    status = cli(url, "status")
    assert status.returncode == 0, status.stderr
    assert "stream: 2 message(s) rejected (unreadable" in status.stdout

    root = project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    run = cluster.run(root, ".", "--json", "r.json")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, (out, err)
    assert "note:" not in out  # the garbage was on no subject of this run

    worker.send_signal(signal.SIGTERM)
    assert worker.wait(timeout=30) == 0
    assert coordinator.poll() is None


def test_the_plan_subject_answers_garbage(cluster: Cluster) -> None:
    cluster.start("coordinator", "coordinator")
    url = cluster.url

    async def ask() -> list[PlanReply]:
        store = await EventStore.connect(url)
        try:
            await store.nc.publish(PLAN_SUBJECT, b"no reply wanted")
            replies = []
            for data in (*POISON, BIG):
                msg = await store.nc.request(PLAN_SUBJECT, data, timeout=10)
                replies.append(msgspec.json.decode(msg.data, type=PlanReply))
            return replies
        finally:
            await store.close()

    replies = eventually(lambda: _quietly(lambda: asyncio.run(ask())), timeout=30, interval=0.5)
    assert all(r.durations == {} for r in replies)


def _quietly(call):
    """`call()`, or None while the coordinator is not subscribed yet (no responders)."""
    try:
        return call()
    except Exception as exc:
        if "NoResponders" in type(exc).__name__ or "Timeout" in type(exc).__name__:
            return None
        raise


@pytest.mark.parametrize("bucket", [topology.HEARTBEATS_BUCKET, LEADER_BUCKET])
def test_garbage_in_the_kv_buckets(cluster: Cluster, tmp_path: Path, bucket: str) -> None:
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    url = cluster.url

    async def spoil() -> None:
        store = await EventStore.connect(url)
        try:
            kv = await store.js.key_value(bucket)
            for n, data in enumerate((*POISON, os.urandom(300_000))):
                await kv.put(f"ghost-{n}", data)
            if bucket == topology.HEARTBEATS_BUCKET:
                await kv.put("w1", POISON[3])  # a real worker's key, with garbage in it
        finally:
            await store.close()

    eventually(lambda: "leading" in (tmp_path / "coordinator.log").read_text(), timeout=60)
    asyncio.run(spoil())
    root = project(tmp_path, SUITE)
    run = cluster.run(root, ".", "--json", "r.json")
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, (out[-2000:], err[-2000:])
    assert json.loads((root / "r.json").read_text())["counts"] == {"passed": 18}
    status = cli(url, "status")
    assert status.returncode == 0 and status.stderr == "", status.stderr
