"""The projector against a real nats-server: recorded logs, rebuild = live, crashes, garbage."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import duckdb
import msgspec
import psutil
import pytest

from bench.replay import synthetic_events
from dtf.errors import ProjectionError, StoreError
from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from events.catalogue import (
    AnyEvent,
    CaseResult,
    RunFinished,
    TaskAssigned,
    TaskCompleted,
    TaskQueued,
    TaskStarted,
    WorkerLost,
)
from events.codec import encode
from events.subjects import subject_of
from projections.pipeline import delivery, projector, stream_reader
from projections.pipeline.frames import Delivered, decode
from projections.pipeline.projector import Projector, replay
from projections.pipeline.registry import registry
from projections.tables.runs import RUNS
from tests.support.paths import EVENTS_FIXTURE, ROOT
from tests.support.polling import eventually_async
from tests.support.publishing import publish_events

# --- helpers ----------------------------------------------------------------------------


def fixture_messages() -> list[tuple[str, bytes]]:
    lines = [json.loads(line) for line in EVENTS_FIXTURE.read_text().splitlines()]
    return [(line["subject"], json.dumps(line["event"]).encode()) for line in lines]


async def publish(store: EventStore, messages: Iterable[tuple[str, bytes]]) -> int:
    """Publish raw messages in order (awaited, so the order is the stream's); last seq."""
    seq = 0
    for subject, data in messages:
        seq = (await store.js.publish(subject, data)).seq
    return seq


def snapshot(db: Path) -> dict[str, list[tuple]]:
    """Every table of the file, every row, in a stable order."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {n: con.execute(f"SELECT * FROM {n} ORDER BY ALL").fetchall() for n in names}
    finally:
        con.close()


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --- (a) a recorded event log from a real run -------------------------------------------


async def test_recorded_log_gives_the_expected_tables(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    last = await publish(store, fixture_messages())
    db = tmp_path / "p.duckdb"
    stats = await replay([nats_server.url], db)
    assert (stats.applied, stats.rejected, stats.last_seq) == (last, 0, last)

    tables = snapshot(db)
    counts = {name: len(rows) for name, rows in tables.items()}
    assert counts == {
        "projector_state": 1,
        "rejected_events": 0,
        "projector_tasks": 0,
        "runs": 3,
        "tasks": 5,
        "attempts": 6,
        "test_cases": 8,
        "results": 3,
        "errors": 4,
        "workers": 1,
        "worker_status": 3,
        "leadership": 1,
    }
    commit = "6c1fac46a21045fa65fbc2a956182c6ecc45819e"
    suite_run = query(
        db,
        "SELECT commit, branch, labels, counts FROM runs WHERE task_count = 2 AND total_cases = 6",
    )
    assert suite_run == [
        (
            commit,
            "main",
            json.dumps(
                {"branch": "main", "commit": commit, "suite": "fixture"}, separators=(",", ":")
            ),
            '{"error":1,"failed":1,"passed":2,"skipped":1,"xfailed":1}',
        )
    ]
    assert query(
        db, "SELECT nodeid, outcome FROM test_cases WHERE outcome <> 'passed' ORDER BY 1"
    ) == [
        ("test_alpha.py::test_compares", "failed"),
        ("test_alpha.py::test_skipped", "skipped"),
        ("test_beta.py::test_known_bug", "xfailed"),
        ("test_beta.py::test_uses_broken", "error"),
    ]
    assert set(query(db, "SELECT DISTINCT commit FROM test_cases")) == {(commit,)}
    # The task that timed out twice: a retried attempt, then a failed task.
    assert query(
        db,
        "SELECT status, attempt, category FROM tasks WHERE kind = 'command'"
        " AND status <> 'completed'",
    ) == [("failed", 2, "timeout")]
    assert query(
        db,
        "SELECT attempt, outcome, category, term FROM attempts WHERE outcome ="
        " 'error' ORDER BY attempt",
    ) == [(1, "error", "timeout", 1), (2, "error", "timeout", 1)]
    latency = query(
        db,
        "SELECT value, unit, direction, dims->>'model', dims->>'commit', commit, hardware"
        " FROM results WHERE name = 'latency_ms'",
    )
    # The run's labels (commit, branch, tags) are not part of a series' dims.
    assert latency == [(12.5, "ms", "lower", "bert", None, commit, "linux-2cpu-24gb")]
    assert query(
        db, "SELECT name, value, unit, direction FROM results WHERE name = 'warmup_s'"
    ) == [("warmup_s", 0.25, None, "lower")]
    errors = query(db, "SELECT nodeid, category, severity, fingerprint FROM errors ORDER BY ALL")
    assert errors == [
        (
            "test_alpha.py::test_compares",
            "test",
            "info",
            "assert [<n>, <n>, <n>] == [<n>, <n>, <n>]",
        ),
        (
            "test_beta.py::test_uses_broken",
            "test",
            "info",
            "error in setup: runtimeerror: database at <ip> refused the connection",
        ),
        (None, "timeout", "warning", "timeout after <n>s"),
        (None, "timeout", "warning", "timeout after <n>s"),
    ]
    assert query(db, "SELECT context->'worker'->>'platform' FROM errors LIMIT 1") == [("linux",)]
    assert query(db, "SELECT worker_id, status, reason, labels, slots FROM workers") == [
        ("w1", "stopped", "drained", "ci", 2)
    ]
    assert query(db, 'SELECT status FROM worker_status ORDER BY "at"') == [
        ("active",),
        ("draining",),
        ("stopped",),
    ]
    terms = sum(1 for _, data in fixture_messages() if json.loads(data).get("term", 0) > 0)
    assert query(db, "SELECT term, coordinator_id, events FROM leadership") == [
        (1, "coord-1", terms)
    ]


# --- (b) rebuild equals live ------------------------------------------------------------


async def test_rebuild_equals_live(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    """A projector following while events arrive, in many small batches, ends with exactly
    the rows of a rebuild from sequence 1 in one go."""
    live = tmp_path / "live.duckdb"
    seen: list[int] = []
    follower = asyncio.create_task(
        replay([nats_server.url], live, follow=True, on_progress=lambda s, _: seen.append(s))
    )
    try:
        last = await publish(store, fixture_messages())
        events = list(synthetic_events(3000, seed=11))
        for start in range(0, len(events), 600):
            last = await publish_events(store, events[start : start + 600])
            await eventually_async(lambda last=last: seen and seen[-1] >= last, timeout=30)
    finally:
        follower.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await follower
    assert len(seen) >= 5  # it really applied in several batches

    rebuilt = tmp_path / "rebuilt.duckdb"
    stats = await replay([nats_server.url], rebuilt, rebuild=True)
    assert stats.last_seq == last
    live_rows, rebuilt_rows = snapshot(live), snapshot(rebuilt)
    assert set(live_rows) == set(rebuilt_rows)
    for name in live_rows:
        assert live_rows[name] == rebuilt_rows[name], name
    assert len(live_rows["test_cases"]) > 2000


async def test_a_rebuild_stores_its_live_tasks_and_goes_on_from_them(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    """A rebuild keeps the tasks still going in memory and stores them once, at its end: as
    the live file holds them, and a catch-up of the rebuilt file later folds on from them."""
    t = time.time()
    history = list(synthetic_events(3000, seed=12))
    going = [
        TaskQueued(id=f"q{i}", at=t, actor="c", task_id=f"zz.{i}", run_id="zz", kind="command")
        for i in range(3)
    ]
    going += [
        TaskAssigned(id="a1", at=t, actor="c", task_id="zz.1", worker_id="w1", term=2),
        TaskAssigned(id="a2", at=t, actor="c", task_id="zz.2", worker_id="w1", term=2),
        TaskStarted(id="s2", at=t, actor="w1", task_id="zz.2", worker_id="w1"),
    ]
    await publish_events(store, history + going)
    live, rebuilt = tmp_path / "live.duckdb", tmp_path / "rebuilt.duckdb"
    await replay([nats_server.url], live)
    await replay([nats_server.url], rebuilt, rebuild=True)
    stored = query(rebuilt, "SELECT task_id FROM projector_tasks ORDER BY ALL")
    assert [r for r in stored if r[0].startswith("zz.")] == [("zz.0",), ("zz.1",), ("zz.2",)]
    assert snapshot(live) == snapshot(rebuilt)
    ended = [
        TaskStarted(id="s1", at=t + 1, actor="w1", task_id="zz.1", worker_id="w1"),
        TaskCompleted(id="c1", at=t + 2, actor="w1", task_id="zz.1", worker_id="w1"),
        TaskCompleted(id="c2", at=t + 2, actor="w1", task_id="zz.2", worker_id="w1"),
    ]
    await publish_events(store, ended)
    await replay([nats_server.url], live)
    await replay([nats_server.url], rebuilt)
    assert snapshot(live) == snapshot(rebuilt)
    assert query(rebuilt, "SELECT task_id, status FROM tasks WHERE run_id = 'zz' ORDER BY 1") == [
        ("zz.0", "queued"),
        ("zz.1", "completed"),
        ("zz.2", "completed"),
    ]


# --- (c) a crash mid-batch --------------------------------------------------------------

CHILD = """
import asyncio, sys
from pathlib import Path
from projections.pipeline.projector import replay
asyncio.run(replay([sys.argv[1]], Path(sys.argv[2]),
                   on_progress=lambda done, total: print(done, total, flush=True)))
"""


async def test_crash_mid_batch_loses_and_doubles_nothing(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    last = await publish_events(store, synthetic_events(40_000, seed=5))
    db = tmp_path / "crashed.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, nats_server.url, str(db)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = child.stdout.readline()  # type: ignore[union-attr]
        assert first, "the projector did not get through its first batch"
        child.send_signal(signal.SIGKILL)  # while it applies the next one
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    with Projector(db) as p:
        stopped_at = p.last_seq
    assert 0 < stopped_at < last

    stats = await replay([nats_server.url], db)
    assert stats.last_seq == last
    assert stats.applied == last - stopped_at  # resumed right after what was committed

    clean = tmp_path / "clean.duckdb"
    await replay([nats_server.url], clean, rebuild=True)
    crashed_rows, clean_rows = snapshot(db), snapshot(clean)
    for name in clean_rows:
        assert crashed_rows[name] == clean_rows[name], name


def test_a_rebuild_batch_over_the_memory_limit_is_retried_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A rebuild caps DuckDB's memory; a batch whose statements need more than the cap (here
    1 MiB) is rolled back and applied again under DuckDB's default, with nothing lost."""
    batch = [
        Delivered(seq, subject_of(e), encode(e))
        for seq, e in enumerate(synthetic_events(5000, seed=3), 1)
    ]
    with Projector(tmp_path / "roomy.duckdb", rebuilding=True) as p:
        assert p.memory_limit_mib == projector.REBUILD_MEMORY_MIB
        p.apply(batch)
    monkeypatch.setattr(projector, "REBUILD_MEMORY_MIB", 1)
    with Projector(tmp_path / "tight.duckdb", rebuilding=True) as p:
        assert p.memory_limit_mib == 1
        p.apply(batch)
        assert p.memory_limit_mib == 0  # lifted
        assert (p.last_seq, p.applied, p.rejected) == (len(batch), len(batch), 0)
    assert snapshot(tmp_path / "tight.duckdb") == snapshot(tmp_path / "roomy.duckdb")


def test_an_event_refused_among_overlapping_batches_is_all_they_lose(tmp_path: Path) -> None:
    """While catching up, each batch's COMMIT overlaps the next batch: when DuckDB refuses
    one event's rows, its batch is applied split around it, the fold reloaded without it
    (the refused task's assignment in the next batch is then ignored), and the file is what
    applying the same deliveries at once gives."""
    t = time.time()
    huge = TaskQueued(
        id="huge", at=t, actor="c", task_id="zz.0", run_id="zz", kind="command", priority=2**40
    )
    assigned = TaskAssigned(id="zz-a", at=t, actor="c", task_id="zz.0", worker_id="w1")
    events = list(synthetic_events(3000, seed=8))
    events[500:500] = [huge]
    events[1500:1500] = [assigned]
    deliveries = [Delivered(i, subject_of(e), encode(e)) for i, e in enumerate(events, 1)]
    with Projector(tmp_path / "behind.duckdb") as p:
        for start in range(0, len(deliveries), 1000):
            p.apply(deliveries[start : start + 1000], overlap=True)
        p.committed()
        assert (p.last_seq, p.rejected) == (len(deliveries), 1)
    with Projector(tmp_path / "whole.duckdb") as whole:
        whole.apply(deliveries)
    assert snapshot(tmp_path / "behind.duckdb") == snapshot(tmp_path / "whole.duckdb")
    assert query(
        tmp_path / "behind.duckdb", "SELECT count(*) FROM attempts WHERE task_id = 'zz.0'"
    ) == [(0,)]


async def test_a_commit_failing_behind_the_next_batch_stops_and_loses_nothing(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While catching up, a batch's COMMIT runs as the next batch is prepared: when it
    fails (the disk, say), the projector stops with one error at the next batch, the file
    holds the batches before it, and a replay resumes right there."""
    events = list(synthetic_events(3000, seed=8))
    deliveries = [Delivered(i, subject_of(e), encode(e)) for i, e in enumerate(events, 1)]
    db = tmp_path / "p.duckdb"
    commits = 0
    original = Projector._commit

    def failing_second(self: Projector) -> None:
        nonlocal commits
        commits += 1
        if commits == 2:
            raise duckdb.IOException("IO Error: could not write to the WAL: No space left")
        original(self)

    monkeypatch.setattr(Projector, "_commit", failing_second)
    with Projector(db) as p:
        p.apply(deliveries[:1000], overlap=True)
        p.apply(deliveries[1000:2000], overlap=True)  # its COMMIT is the one that fails
        with pytest.raises(ProjectionError) as info:
            p.apply(deliveries[2000:], overlap=True)
        assert "No space left" in str(info.value) and "\n" not in str(info.value)
    monkeypatch.undo()
    with Projector(db) as p:
        assert p.last_seq == 1000
        p.apply(deliveries[1000:], overlap=True)
        p.committed()
        assert p.last_seq == len(deliveries) and p.applied == len(deliveries) - 1000
    with Projector(tmp_path / "clean.duckdb") as clean:
        clean.apply(deliveries)
    assert snapshot(db) == snapshot(tmp_path / "clean.duckdb")


# --- (d) garbage on the stream ----------------------------------------------------------


def _events(*events: AnyEvent) -> list[tuple[str, bytes]]:
    return [(subject_of(e), encode(e)) for e in events]


async def test_garbage_is_rejected_or_ignored_never_fatal(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    t = time.time()
    q = TaskQueued(
        id="q", at=t, actor="c", task_id="r9.0", run_id="r9", kind="pytest", nodeids=("a.py::t",)
    )
    good = [
        q,
        TaskAssigned(id="a", at=t, actor="c", task_id="r9.0", worker_id="w9", term=4),
        TaskStarted(id="s", at=t, actor="w9", task_id="r9.0", worker_id="w9"),
        TaskCompleted(
            id="d",
            at=t,
            actor="w9",
            task_id="r9.0",
            worker_id="w9",
            cases=(CaseResult("a.py::t", "passed", 0.1),),
        ),
    ]
    messages = [
        ("dtf.evt.task.r9.0.queued", b"not json at all"),
        ("dtf.evt.task.r9.0.exploded", b'{"type":"task.exploded","id":"x","at":1,"actor":"a"}'),
        ("dtf.evt.task.r9.0.started", b'{"type":"task.started","id":"y","at":1,"actor":"a"}'),
        ("dtf.evt.task.r9.0.queued", b"\xff\xfe\x00binary"),
        *_events(
            TaskStarted(id="u1", at=t, actor="w9", task_id="zz.1", worker_id="w9"),
            RunFinished(id="u2", at=t, actor="c", run_id="nosuchrun", term=4),
            WorkerLost(id="u3", at=t, actor="c", worker_id="nosuchworker", term=4),
            *good,
            # Stale: an attempt that does not exist, and a second queueing of a finished task.
            TaskCompleted(id="u4", at=t, actor="w9", task_id="r9.0", worker_id="w9", attempt=7),
            TaskQueued(id="q2", at=t, actor="c", task_id="r9.0", run_id="r9", kind="command"),
        ),
    ]
    last = await publish(store, messages)
    db = tmp_path / "p.duckdb"
    stats = await replay([nats_server.url], db)
    assert stats.last_seq == last
    rejected = query(db, "SELECT seq, subject, reason, raw FROM rejected_events ORDER BY seq")
    assert [r[0] for r in rejected] == [1, 2, 3, 4]
    assert "JSON" in rejected[0][2] and rejected[0][3] == "not json at all"
    assert "task.exploded" in rejected[1][2]
    assert "task_id" in rejected[2][2]
    assert rejected[3][3].startswith("\\xff\\xfe")
    assert stats.rejected == 4
    # Unknown task, run and worker; the stale completion; the second queueing.
    assert stats.ignored == 5
    assert query(db, "SELECT task_id, kind, status FROM tasks") == [("r9.0", "pytest", "completed")]
    assert query(db, "SELECT count(*) FROM test_cases") == [(1,)]
    # Later, in a batch of its own (the task is no longer in memory), still ignored; and the
    # projector goes on: a new task is applied normally.
    later = TaskQueued(id="q3", at=t, actor="c", task_id="r9.1", run_id="r9", kind="pytest")
    again = TaskQueued(id="q4", at=t, actor="c", task_id="r9.0", run_id="r9", kind="command")
    last = await publish(store, _events(again, later))
    stats = await replay([nats_server.url], db)
    assert (stats.applied, stats.ignored, stats.last_seq) == (2, 1, last)
    assert query(db, "SELECT task_id, kind FROM tasks ORDER BY 1") == [
        ("r9.0", "pytest"),
        ("r9.1", "pytest"),
    ]


async def test_an_event_whose_rows_cannot_be_written_is_rejected_with_its_text(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    """Decoded by the stream reader, which sends no payload with it: the rejection still
    records the event as JSON, and the events around it are applied."""
    t = time.time()
    huge = TaskQueued(
        id="q", at=t, actor="c", task_id="r8.0", run_id="r8", kind="command", priority=2**40
    )
    fine = TaskQueued(id="q1", at=t, actor="c", task_id="r8.1", run_id="r8", kind="command")
    last = await publish(store, _events(huge, fine))
    db = tmp_path / "p.duckdb"
    stats = await replay([nats_server.url], db)
    assert (stats.last_seq, stats.rejected) == (last, 1)
    [(reason, raw)] = query(db, "SELECT reason, raw FROM rejected_events")
    assert "INT32" in reason or "out of range" in reason.lower(), reason
    assert msgspec.json.decode(raw, type=TaskQueued) == huge
    assert query(db, "SELECT task_id FROM tasks") == [("r8.1",)]


# --- (e) the swap is atomic -------------------------------------------------------------


class _DiskFull:
    name = "disk_full"
    tables = (RUNS,)

    def apply(self, batch, writes) -> None:
        raise OSError(28, "No space left on device")


async def test_failed_rebuild_leaves_the_old_file(
    store: EventStore, nats_server: LocalServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await publish(store, fixture_messages())
    db = tmp_path / "p.duckdb"
    await replay([nats_server.url], db)
    before = digest(db)
    files = sorted(p.name for p in tmp_path.iterdir())

    with pytest.raises(StoreError):
        await replay(["nats://127.0.0.1:1"], db, rebuild=True)
    monkeypatch.setattr(projector, "registry", lambda: {**registry(), "disk_full": _DiskFull()})
    with pytest.raises(ProjectionError, match="No space left on device"):
        await replay([nats_server.url], db, rebuild=True)
    assert digest(db) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == files  # no temp file left behind

    monkeypatch.undo()
    old_inode = db.stat().st_ino
    stats = await replay([nats_server.url], db, rebuild=True)
    assert db.stat().st_ino != old_inode  # a new file was swapped in
    assert stats.applied == len(fixture_messages())
    assert len(snapshot(db)["tasks"]) == 5


@pytest.mark.parametrize("rebuild", [False, True])
async def test_a_file_in_a_missing_directory_is_one_error_naming_it(
    nats_server: LocalServer, tmp_path: Path, rebuild: bool
) -> None:
    db = tmp_path / "nowhere" / "p.duckdb"
    with pytest.raises(ProjectionError) as info:
        await replay([nats_server.url], db, rebuild=rebuild)
    assert str(info.value) == f"{db}: no such directory {db.parent}"
    assert not db.parent.exists()


LOCKER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
time.sleep(60)
"""


def test_file_in_use_is_one_clear_error(tmp_path: Path) -> None:
    db = tmp_path / "p.duckdb"
    Projector(db).open().close()
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(db)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert locker.stdout.readline().strip() == "locked"  # type: ignore[union-attr]
        with pytest.raises(ProjectionError) as info:
            Projector(db).open()
        message = str(info.value)
        assert f"PID {locker.pid}" in message and "\n" not in message
        # The analysis commands say the same (a follower holds the file while it runs).
        report = subprocess.run(
            [sys.executable, "-m", "dtf", "report", "--db", str(db)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert report.returncode == 2
        assert (
            report.stderr.count("\n") == 1
            and f"in use by another process (PID {locker.pid}" in report.stderr
        )
    finally:
        locker.kill()
        locker.wait()


# --- the reader -------------------------------------------------------------------------


def _reader_children() -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process().children()
        if "projections.pipeline.stream_reader" in " ".join(p.cmdline())
    ]


async def test_killed_reader_is_one_clear_error_and_loses_nothing(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    """The stream is read by a child process; when it dies (kill -9), the projector stops
    with one line, keeps every committed batch, and a restart resumes where it stopped."""
    first = await publish(store, fixture_messages())
    db = tmp_path / "p.duckdb"
    seen: list[int] = []
    follower = asyncio.create_task(
        replay([nats_server.url], db, follow=True, on_progress=lambda s, _: seen.append(s))
    )
    await eventually_async(lambda: seen and seen[-1] >= first, timeout=30)
    (reader,) = _reader_children()
    reader.kill()
    with pytest.raises(StoreError) as info:
        await asyncio.wait_for(follower, 30)
    assert "\n" not in str(info.value) and "exited" in str(info.value)
    assert not _reader_children()

    last = await publish_events(store, synthetic_events(2000, seed=3))
    stats = await replay([nats_server.url], db)
    assert stats.last_seq == last and stats.applied == last - first
    clean = tmp_path / "clean.duckdb"
    await replay([nats_server.url], clean, rebuild=True)
    assert snapshot(db) == snapshot(clean)


async def test_the_reader_stops_reading_at_its_high_water_mark(
    store: EventStore, nats_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Frames the projector has not taken hold the reader back: it stops reading the pipe
    at HIGH_WATER deliveries (give or take the frame that crossed it), and everything comes
    through, in order, once they are taken."""
    last = await publish_events(store, synthetic_events(5 * stream_reader.FRAME_MESSAGES, seed=5))
    monkeypatch.setattr(delivery, "HIGH_WATER", 100)
    reader = await delivery.open_reader([nats_server.url], 1)
    try:
        await eventually_async(lambda: reader.buffered() >= 100, timeout=30)
        # What must not happen is watched for a second: the child has five frames to send.
        limit = 100 + stream_reader.FRAME_MESSAGES
        for _ in range(20):
            await asyncio.sleep(0.05)
            assert reader.buffered() <= limit < last
        seqs: list[int] = []
        while len(seqs) < last:
            await reader.wait(1, 5)
            seqs += decode(reader.take(1000)).seqs
        assert seqs == list(range(1, last + 1))
    finally:
        await reader.stop()
    assert not _reader_children()


def test_reader_child_fails_in_one_line() -> None:
    """Run on its own against a server that is not there: one line, exit status 2."""
    child = subprocess.run(
        [
            sys.executable,
            "-m",
            "projections.pipeline.stream_reader",
            "--from",
            "1",
            "nats://127.0.0.1:1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 2
    assert child.stdout == ""
    assert len(child.stderr.strip().splitlines()) == 1 and "cannot reach NATS" in child.stderr


async def test_replay_follow_through_the_cli(
    store: EventStore, nats_server: LocalServer, tmp_path: Path
) -> None:
    """`dtf replay --follow` logs a line per batch, applies what arrives, and Ctrl-C leaves
    the file complete up to the last batch."""
    first = await publish(store, fixture_messages())
    db = tmp_path / "f.duckdb"
    args = ["replay", "--server", nats_server.url, "--db", str(db), "--follow"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "dtf", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()

    def pipe_lines() -> None:  # a thread: the loop must stay free while lines arrive
        for line in proc.stdout:  # type: ignore[union-attr]
            lines.put(line)

    threading.Thread(target=pipe_lines, daemon=True).start()

    def saw(seq: int) -> bool:
        while not lines.empty():
            if f"sequence {seq:,} / " in lines.get():
                return True
        return False

    try:
        await eventually_async(lambda: saw(first), timeout=30)
        last = await publish_events(store, synthetic_events(1500, seed=4))
        await eventually_async(lambda: saw(last), timeout=30)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    with Projector(db) as p:
        assert p.last_seq == last


def test_reruns_give_a_row_each_before_the_outcome_in_a_batch_of_several_tasks(
    tmp_path: Path,
) -> None:
    """The test-case rows of a batch are built as columns: each attempt's values repeated
    over its cases' rows, reruns included, must line up with the right cases."""
    t = 1_800_000_000.0
    events: list[AnyEvent] = []
    outcomes = {
        "r1.0": (CaseResult("a.py::x", "passed", 0.5), CaseResult("a.py::y", "failed", 1.0, "no")),
        "r1.1": (CaseResult("b.py::x", "passed", 0.25, reruns=2), CaseResult("b.py::y", "skipped")),
    }
    for k, (task_id, cases) in enumerate(outcomes.items()):
        worker = f"w{k}"
        nodeids = tuple(c.nodeid for c in cases)
        events += [
            TaskQueued(
                id=f"q{k}",
                at=t,
                actor="c",
                task_id=task_id,
                run_id="r1",
                kind="pytest",
                nodeids=nodeids,
            ),
            TaskAssigned(id=f"a{k}", at=t, actor="c", task_id=task_id, worker_id=worker, term=1),
            TaskStarted(id=f"s{k}", at=t, actor=worker, task_id=task_id, worker_id=worker),
            TaskCompleted(
                id=f"c{k}", at=t + k, actor=worker, task_id=task_id, worker_id=worker, cases=cases
            ),
        ]
    batch = [Delivered(seq, subject_of(e), encode(e)) for seq, e in enumerate(events, 1)]
    with Projector(tmp_path / "p.duckdb") as p:
        p.apply(batch)
        rows = p.con.execute(
            "SELECT task_id, attempt, nodeid, outcome, duration, message, worker_id, finished_at"
            " FROM test_cases ORDER BY rowid"
        ).fetchall()
    assert rows == [
        ("r1.0", 1, "a.py::x", "passed", 0.5, None, "w0", t),
        ("r1.0", 1, "a.py::y", "failed", 1.0, "no", "w0", t),
        ("r1.1", 1, "b.py::x", "rerun", None, None, "w1", t + 1),
        ("r1.1", 1, "b.py::x", "rerun", None, None, "w1", t + 1),
        ("r1.1", 1, "b.py::x", "passed", 0.25, None, "w1", t + 1),
        ("r1.1", 1, "b.py::y", "skipped", 0.0, None, "w1", t + 1),
    ]
