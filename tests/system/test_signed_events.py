"""Signed events (issue #10) on a real `dtf server --auth`: forgeries that get past the server's
permissions are refused by every reader and recorded, never applied.

Each event is appended through a store signed in with one role's key, as the services do; the
forgeries a key holder could attempt are then checked by the coordinator's fold (its
`on_record`), the projector (`dtf replay`, rows in DuckDB), `dtf show` and `dtf audit verify`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import time
import uuid
from pathlib import Path

import duckdb
import pytest

from dtf.coordinator.service import Coordinator
from dtf.core.scheduling import strategy
from dtf.errors import PermissionDenied
from dtf.nats import auth
from dtf.nats.signing import SIGNATURE_HEADER, SIGNER_HEADER, Signing
from dtf.nats.store import EventStore
from events import topology
from events.catalogue import (
    AnyEvent,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskQueued,
    TaskStarted,
)
from events.codec import encode
from events.subjects import ROOT, subject_of
from tests.support.cluster import PY
from tests.support.keys import stolen_copy
from tests.support.polling import eventually

RUN = "r-signed"
TASK = f"{RUN}.0"


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """The five role keys, and one key each for two workers, worker-a and worker-b."""
    directory = tmp_path / "keys"
    auth.init(directory)
    auth.add(directory, "worker", "worker-a")
    auth.add(directory, "worker", "worker-b")
    return directory


def stamp(actor: str) -> dict:
    return {"id": uuid.uuid4().hex, "at": time.time(), "actor": actor}


def dtf(*args: str, cwd: Path, creds: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "dtf", *args, "--creds", str(creds)],
        cwd=cwd, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def _as(url: str, keys: Path, name: str) -> EventStore:
    return await EventStore.connect(url, creds=keys / f"{name}.nk", name=f"test-{name}")


async def _raw(admin: EventStore, subject: str, data: bytes, headers: dict[str, str]) -> int:
    """Publish bytes as they are, with the admin key (which may publish anything): how a
    forgery reaches the stream when the server's permissions cannot stop it."""
    ids = {"Nats-Msg-Id": uuid.uuid4().hex}
    return (await admin.js.publish(subject, data, headers={**ids, **headers})).seq


async def _forge(url: str, keys: Path) -> dict[str, int]:
    """A task assigned to worker-b, then every forgery, then worker-b's own result; the
    stream sequence of each, by name."""
    stores = {n: await _as(url, keys, n) for n in ("submitter", "coordinator", "admin",
                                                    "worker-a", "worker-b")}  # fmt: skip
    seqs: dict[str, int] = {}

    async def put(name: str, who: str, event: AnyEvent) -> None:
        seqs[name] = await stores[who].append(event)

    try:
        await put("submit", "submitter", RunSubmitted(
            run_id=RUN, bundle="", root="/", args=(), task_ids=(TASK,), total_cases=1,
            **stamp("t")))  # fmt: skip
        await put("queue", "submitter", TaskQueued(
            task_id=TASK, run_id=RUN, kind="pytest", nodeids=("t::a",), **stamp("t")))  # fmt: skip
        await put("assign", "coordinator", TaskAssigned(
            task_id=TASK, worker_id="worker-b", **stamp("c")))  # fmt: skip
        await put("start", "worker-b", TaskStarted(
            task_id=TASK, worker_id="worker-b", **stamp("b")))  # fmt: skip
        # worker-a, with its own key, reports as worker-b, and then as itself on b's attempt.
        await put("as_b", "worker-a", TaskCompleted(
            task_id=TASK, worker_id="worker-b", outcome="passed", **stamp("a")))  # fmt: skip
        await put("on_b", "worker-a", TaskCompleted(
            task_id=TASK, worker_id="worker-a", outcome="passed", **stamp("a")))  # fmt: skip
        # The submitter may not publish a completion at all: the server refuses it ...
        with pytest.raises(PermissionDenied, match="permission denied"):
            await stores["submitter"].append(TaskCompleted(
                task_id=TASK, worker_id="worker-b", outcome="passed", **stamp("s")))  # fmt: skip
        # ... and one signed with its key that reaches the stream anyway is refused by readers.
        forged = TaskCompleted(task_id=TASK, worker_id="worker-b", outcome="passed", **stamp("s"))
        subject, data = subject_of(forged), encode(forged)
        signer = Signing(auth.read_seed(keys / "submitter.nk"))
        seqs["submitter"] = await _raw(stores["admin"], subject, data,
                                       signer.headers(subject, data))  # fmt: skip
        # No signature at all, where every event must be signed.
        seqs["unsigned"] = await _raw(stores["admin"], subject, data, {})
        # worker-b's real result: the only one that counts.
        await put("result", "worker-b", TaskCompleted(
            task_id=TASK, worker_id="worker-b", outcome="failed", **stamp("b")))  # fmt: skip
        # An old signed event replayed with a new id: the signature no longer matches.
        old = await stores["admin"].js.get_msg(topology.EVENTS_STREAM, seqs["result"])
        body = json.loads(old.data)
        body["id"] = uuid.uuid4().hex
        headers = {k: old.headers[k] for k in (SIGNER_HEADER, SIGNATURE_HEADER)}
        seqs["replayed"] = await _raw(stores["admin"], old.subject,
                                      json.dumps(body).encode(), headers)  # fmt: skip
        # A signature that is not base64 at all.
        seqs["garbled"] = await _raw(stores["admin"], old.subject, old.data,
                                     {**headers, SIGNATURE_HEADER: "%%%"})  # fmt: skip
    finally:
        for store in stores.values():
            await store.close()
    return seqs


REFUSED = {
    "as_b": "worker 'worker-a' wrote an event as worker 'worker-b'",
    "on_b": "assigned to 'worker-b'",
    "submitter": "submitter 'submitter' may not write",
    "unsigned": "unsigned",
    "replayed": "does not match the event",
    "garbled": "does not match the event",
}


async def _coordinator_view(url: str, keys: Path) -> Coordinator:
    """The coordinator's fold of the whole stream, through its own key and `on_record`."""
    store = await _as(url, keys, "coordinator")
    coordinator = Coordinator(store, strategy("least-loaded"))
    follower = await store.follow(f"{ROOT}.>", coordinator.on_record)
    await asyncio.wait_for(follower.caught_up.wait(), 30)
    await follower.stop()
    await store.close()
    return coordinator


def test_forgeries_are_refused_by_every_reader_and_recorded(
    secured_cli: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    _, url = secured_cli
    seqs = asyncio.run(_forge(url, keys))

    # The coordinator: the task holds worker-b's own result, every forgery is rejected.
    coordinator = asyncio.run(_coordinator_view(url, keys))
    task = coordinator.view.tasks[TASK]
    assert (task.status, task.worker_id) == ("completed", "worker-b")
    assert coordinator.view.rejected == len(REFUSED)
    reasons = {r.seq: r.reason for r in coordinator.view.rejections}
    for name, why in REFUSED.items():
        assert why in reasons[seqs[name]], (name, reasons)

    # The projector, in its own process with the viewer's key: the same rejections, recorded.
    db = tmp_path / "r.duckdb"
    replay = dtf("replay", "--db", str(db), "--server", url, cwd=tmp_path, creds=keys / "viewer.nk")
    assert replay.returncode == 0, replay.stderr
    with duckdb.connect(str(db), read_only=True) as con:
        rows = dict(con.execute("SELECT seq, reason FROM rejected_events").fetchall())
        status = con.execute(
            "SELECT status, worker_id FROM tasks WHERE task_id = ?", [TASK]
        ).fetchone()
        outcome = con.execute(
            "SELECT outcome FROM attempts WHERE task_id = ? AND outcome IS NOT NULL", [TASK]
        ).fetchall()
    assert status == ("completed", "worker-b") and outcome == [("failed",)]
    assert set(rows) == {seqs[n] for n in REFUSED}
    for name, why in REFUSED.items():
        assert why in rows[seqs[name]], (name, rows)

    # The audit trail shows each refusal with its reason, and who signed the rest.
    show = dtf("show", "task", TASK, "--server", url, cwd=tmp_path, creds=keys / "viewer.nk")
    assert show.returncode == 0, show.stderr
    assert show.stdout.count("REJECTED") == len(REFUSED)
    assert "signed-by=worker-b(worker)" in show.stdout

    # `dtf audit verify` counts them, and fails.
    audit = dtf("audit", "verify", "--server", url, cwd=tmp_path, creds=keys / "viewer.nk")
    assert audit.returncode == 1, audit.stdout + audit.stderr
    valid = len(seqs) - len(REFUSED)
    assert f"{valid + len(REFUSED)} events: {valid} valid, 0 unsigned, {len(REFUSED)} invalid" in (
        audit.stdout
    )


async def _complete_as(url: str, keys: Path, name: str) -> int:
    store = await _as(url, keys, name)
    try:
        return await store.append(TaskCompleted(
            task_id=f"{RUN}.9", worker_id=name, outcome="passed", **stamp(name)))  # fmt: skip
    finally:
        await store.close()


def test_a_revoked_keys_history_still_verifies_on_a_rebuild(
    secured_cli: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    _, url = secured_cli
    before = asyncio.run(_complete_as(url, keys, "worker-a"))
    kept = stolen_copy(keys / "worker-a.nk", tmp_path / "kept.nk")  # before the revocation
    done = subprocess.run([PY, "-m", "dtf", "auth", "revoke", "worker-a", "--dir", str(keys)],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    listed = subprocess.run([PY, "-m", "dtf", "auth", "list", "--dir", str(keys)],
                            capture_output=True, text=True, timeout=60)  # fmt: skip
    assert "(revoked)" in listed.stdout

    def registry_records_it() -> bool:
        async def read() -> bytes:
            store = await _as(url, keys, "viewer")
            try:
                kv = await store.js.key_value(topology.KEYS_BUCKET)
                return (await kv.get(auth.public_key(kept.read_bytes().strip()))).value or b""
            finally:
                await store.close()

        return b"revoked_after" in asyncio.run(read())

    eventually(registry_records_it, timeout=30, interval=0.2)
    with pytest.raises(PermissionDenied):  # the server no longer lets the key in
        asyncio.run(EventStore.connect(url, creds=kept, timeout=5))
    # What it signs now is refused even where it reaches the stream (the admin's connection).
    late = TaskCompleted(task_id=f"{RUN}.9", worker_id="worker-a", outcome="failed", **stamp("a"))
    subject, data = subject_of(late), encode(late)
    headers = Signing(kept.read_bytes().strip()).headers(subject, data)

    async def publish_late() -> int:
        admin = await _as(url, keys, "admin")
        try:
            return await _raw(admin, subject, data, headers)
        finally:
            await admin.close()

    after = asyncio.run(publish_late())
    # What it signed before the revocation still verifies, on a rebuild as it did live.
    audit = dtf("audit", "verify", "--server", url, cwd=tmp_path, creds=keys / "viewer.nk")
    assert audit.returncode == 1, audit.stdout + audit.stderr
    assert "2 events: 1 valid, 0 unsigned, 1 invalid" in audit.stdout
    assert f"revoked at seq {before}" in audit.stdout and str(after) in audit.stdout


def test_signed_is_verified_and_unsigned_is_ok_without_keys(tmp_path: Path) -> None:
    """On a server without --auth nothing is checked: events signed or not are accepted."""
    from dtf.nats.server import start_server

    server = start_server(store_dir=tmp_path / "js", durable=False)
    try:

        async def go() -> tuple[int, int]:
            store = await EventStore.connect(server.url)
            try:
                await store.append(TaskCompleted(
                    task_id=f"{RUN}.1", worker_id="w", outcome="passed", **stamp("w")))  # fmt: skip
                records = await store.load(f"{ROOT}.>")
                return len(records), sum(1 for r in records if getattr(r, "signer", None))
            finally:
                await store.close()

        assert asyncio.run(go()) == (1, 0)
        audit = subprocess.run(
            [PY, "-m", "dtf", "audit", "verify", "--server", server.url],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert audit.returncode == 0, audit.stderr
        assert "1 events: 0 valid, 1 unsigned, 0 invalid" in audit.stdout
        assert "keeps no signing keys" in audit.stdout
    finally:
        server.stop()


def test_signature_headers_are_the_public_key_and_base64(keys: Path) -> None:
    signer = Signing(auth.read_seed(keys / "worker-a.nk"))
    headers = signer.headers("dtf.evt.x", b"{}")
    assert headers[SIGNER_HEADER] == signer.public_key.strip()
    assert len(base64.b64decode(headers[SIGNATURE_HEADER])) == 64


async def _forge_results(url: str, keys: Path) -> int:
    """As worker-a: for every task started so far, a passing result in its own name and one
    in worker-b's (the attempt's assignee).  Returns how many it published."""
    reader = await _as(url, keys, "viewer")
    forger = await _as(url, keys, "worker-a")
    forged = 0
    try:
        for rec in await reader.load(f"{ROOT}.task.>"):
            event = getattr(rec, "event", None)
            if not isinstance(event, TaskStarted):
                continue
            for claimed in ("worker-a", "worker-b"):
                await forger.append(TaskCompleted(
                    task_id=event.task_id, worker_id=claimed, attempt=event.attempt,
                    outcome="passed", **stamp("a")))  # fmt: skip
                forged += 1
    finally:
        await reader.close()
        await forger.close()
    return forged


def test_a_live_run_keeps_its_real_results_under_forged_ones(
    secured_cli: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    """Real processes, each with its own key: while worker-b runs a failing suite, worker-a
    publishes passing results for its tasks.  The run still fails, as its tests do."""
    from tests.support.cluster import Cluster, project

    _, url = secured_cli
    cluster = Cluster(url, tmp_path)
    try:
        as_role = lambda name: {**cluster.env, "DTF_CREDS": str(keys / f"{name}.nk")}  # noqa: E731
        cluster.start("coordinator", "coordinator", env=as_role("coordinator"))
        cluster.worker("worker-b", env=as_role("worker-b"))
        slow = "import time\n\ndef test_slow_fail():\n    time.sleep(3)\n    assert 0\n"
        root = project(tmp_path, {"test_a.py": slow, "test_b.py": slow})
        run = subprocess.Popen(
            [PY, "-m", "dtf", "run", "--no-progress", "--split", "test", "--json", "r.json"],
            cwd=root, env=as_role("submitter"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        forged = eventually(lambda: asyncio.run(_forge_results(url, keys)), timeout=60)
        out, err = run.communicate(timeout=120)
        assert run.returncode == 1, out + err
        report = json.loads((root / "r.json").read_text())
        assert report["counts"] == {"failed": 2}, report["counts"]
        log = (tmp_path / "coordinator.log").read_text()
        assert log.count("rejected message") >= forged, log[-3000:]
        assert "assigned to 'worker-b'" in log and "as worker 'worker-b'" in log
    finally:
        cluster.stop()
