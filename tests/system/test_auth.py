"""Who may do what (issue #10): keys from `dtf auth`, a real nats-server with the rendered
authorization, every role against every action of the system, and the real CLI.

The matrix connects with each role's key and tries each action through the store, as the
services do; an action a role is not given must fail with `PermissionDenied` (the server's
refusal, in one line), and one it is given must succeed.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import nats.errors
import pytest
from nats.js import api

from dtf.errors import PermissionDenied
from dtf.nats import auth
from dtf.nats.claim import Claim
from dtf.nats.lease import KvKey, leader_bucket
from dtf.nats.server import LocalServer, start_server
from dtf.nats.store import EventStore
from events import topology
from events.catalogue import (
    Capabilities,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskQueued,
    TaskStarted,
    WorkerDrainRequested,
    WorkerRegistered,
)
from events.subjects import ROOT as EVENTS_ROOT
from tests.support.cluster import PY, Cluster, project
from tests.support.keys import stolen_copy
from tests.support.polling import eventually


def stamp() -> dict:
    return {"id": uuid.uuid4().hex, "at": time.time(), "actor": "test"}


@pytest.fixture
def secured(keys: Path, tmp_path: Path) -> Iterator[LocalServer]:
    """A nats-server that lets in the keys of `keys` only, set up by its admin."""
    server = start_server(
        store_dir=tmp_path / "js",
        durable=False,
        log_file=tmp_path / "nats.log",
        authorization=auth.render(auth.load_users(keys)),
    )

    async def set_up() -> None:
        admin = await EventStore.connect(server.url, creds=keys / "admin.nk")
        await admin.ensure_topology(with_leases=True)
        await admin.close()

    asyncio.run(set_up())
    yield server
    server.stop()


# --- the role matrix ----------------------------------------------------------------------

RUN = "r-auth"
TASK = f"{RUN}.0"
CAPS = Capabilities(platform="linux", hostname="h", cpus=2, memory_gb=4)


async def _submit(store: EventStore) -> None:
    run_id = f"r{uuid.uuid4().hex[:8]}"
    await store.append(RunSubmitted(**stamp(), run_id=run_id, bundle="", root="/p"))


async def _queue(store: EventStore) -> None:
    await store.append(
        TaskQueued(**stamp(), task_id=TASK, run_id=RUN, kind="pytest", nodeids=("t::a",))
    )


async def _assign(store: EventStore) -> None:
    await store.append(TaskAssigned(**stamp(), task_id=TASK, worker_id="worker", attempt=1))


async def _start(store: EventStore) -> None:
    await store.append(TaskStarted(**stamp(), task_id=TASK, worker_id="worker", attempt=1))


async def _complete(store: EventStore) -> None:
    await store.append(TaskCompleted(**stamp(), task_id=TASK, worker_id="worker", outcome="passed"))


async def _register(store: EventStore) -> None:
    await store.append(WorkerRegistered(**stamp(), worker_id="worker", capabilities=CAPS))


async def _register_another(store: EventStore) -> None:
    await store.append(WorkerRegistered(**stamp(), worker_id="gpu-box-7", capabilities=CAPS))


async def _heartbeat(store: EventStore) -> None:
    await store.beat("worker", b"{}")


async def _lease(store: EventStore) -> None:
    claim = Claim(KvKey(await leader_bucket(store.js)), "test-claim", 30.0)
    await claim.step()
    if claim.term == 0:
        raise store.denials.explain(TimeoutError(), "taking the lease")
    # Give it back, so that the next role's attempt is a fresh one.
    await store.denials.unless_refused(claim.key.delete(claim.term))


async def _read_events(store: EventStore) -> None:
    await store.load(f"{EVENTS_ROOT}.>", timeout=10)


async def _read_bundles(store: EventStore) -> None:
    await store.bundles().get("no-such-bundle")


async def _drain(store: EventStore) -> None:
    await store.append(WorkerDrainRequested(**stamp(), worker_id="worker"))


async def _js_api(store: EventStore, call: Awaitable[object], doing: str) -> None:
    try:
        await store.denials.unless_refused(call)
    except (nats.errors.Error, TimeoutError) as exc:
        raise store.denials.explain(exc, doing) from None


async def _purge(store: EventStore) -> None:
    await _js_api(store, store.js.purge_stream(topology.LOGS_STREAM), "purge")


async def _delete_stream(store: EventStore) -> None:
    # A throwaway stream, so that the admin's success leaves the others' intact.
    name = f"SCRATCH_{uuid.uuid4().hex[:6]}"
    await _js_api(
        store, store.js.add_stream(api.StreamConfig(name=name, subjects=[f"scratch.{name}"])), "add"
    )
    await _js_api(store, store.js.delete_stream(name), "delete")


Action = Callable[[EventStore], Awaitable[None]]
ACTIONS: dict[str, Action] = {
    "submit": _submit,
    "queue": _queue,
    "assign": _assign,
    "start": _start,
    "complete": _complete,
    "register": _register,
    "register another worker": _register_another,
    "heartbeat": _heartbeat,
    "lease": _lease,
    "read events": _read_events,
    "read bundles": _read_bundles,
    "drain": _drain,
    "purge": _purge,
    "create and delete a stream": _delete_stream,
}
# What each role's key may do; everything else must be refused.  (The key named "worker" is
# the worker whose id is "worker".)
ALLOWED = {
    "submitter": {"submit", "queue", "read events", "read bundles"},
    "worker": {"start", "complete", "register", "heartbeat", "read events", "read bundles"},
    "coordinator": {"queue", "assign", "lease", "read events"},
    "viewer": {"read events", "read bundles"},
    "admin": set(ACTIONS),
}


async def test_every_role_may_do_exactly_what_its_table_says(
    secured: LocalServer, keys: Path
) -> None:
    outcomes: dict[tuple[str, str], str] = {}
    for role in auth.ROLES:
        store = await EventStore.connect(secured.url, creds=keys / f"{role}.nk", name=role)
        try:
            for name, action in ACTIONS.items():
                try:
                    await asyncio.wait_for(action(store), 20)
                except PermissionDenied as exc:
                    assert str(exc).startswith("permission denied: "), exc
                    assert "\n" not in str(exc)
                    outcomes[role, name] = "denied"
                else:
                    outcomes[role, name] = "allowed"
        finally:
            await store.close()
    expected = {
        (role, name): "allowed" if name in ALLOWED[role] else "denied"
        for role in auth.ROLES
        for name in ACTIONS
    }
    wrong = {k: v for k, v in outcomes.items() if v != expected[k]}
    assert not wrong, wrong
    assert len(outcomes) == len(auth.ROLES) * len(ACTIONS) == 70


async def test_a_client_without_a_key_or_with_an_unknown_one_is_refused(
    secured: LocalServer, tmp_path: Path
) -> None:
    with pytest.raises(PermissionDenied, match="refused to let in a client without a key"):
        await EventStore.connect(secured.url, timeout=3)
    stranger = tmp_path / "stranger.nk"
    stranger.write_bytes(auth.new_seed())
    stranger.chmod(0o600)
    with pytest.raises(PermissionDenied, match="refused the key"):
        await EventStore.connect(secured.url, creds=stranger, timeout=3)


# --- key files and the registry -----------------------------------------------------------


def dtf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PY, "-m", "dtf", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env=env or os.environ.copy(),
    )


def one_error_line(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, done.stdout + done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("dtf: error: "), done.stderr
    return lines[0]


def test_auth_init_writes_private_keys_and_refuses_a_second_time(tmp_path: Path) -> None:
    done = dtf("auth", "init", "--dir", "keys", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    keys = tmp_path / "keys"
    for role in auth.ROLES:
        assert (keys / f"{role}.nk").stat().st_mode & 0o777 == 0o600
        assert (keys / f"{role}.nk").read_bytes().startswith(b"SU")
    assert (keys.stat().st_mode & 0o777) == 0o700
    users = auth.load_users(keys)
    assert [u.role for u in users] == list(auth.ROLES)
    conf = (keys / auth.CONF).read_text()
    assert all(u.public_key in conf for u in users)
    for role in auth.ROLES:  # no seed ever leaves its file
        assert (keys / f"{role}.nk").read_text().strip() not in conf
    assert "already holds dtf keys" in one_error_line(
        dtf("auth", "init", "--dir", "keys", cwd=tmp_path)
    )


def test_auth_add_and_revoke(tmp_path: Path, keys: Path) -> None:
    done = dtf("auth", "add", "worker", "gpu-box-7", "--dir", str(keys), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (keys / "gpu-box-7.nk").exists()
    listing = dtf("auth", "list", "--dir", str(keys), cwd=tmp_path).stdout
    assert "gpu-box-7" in listing and "worker" in listing
    assert "exists already" in one_error_line(
        dtf("auth", "add", "viewer", "gpu-box-7", "--dir", str(keys), cwd=tmp_path)
    )
    assert "letters, digits" in one_error_line(
        dtf("auth", "add", "viewer", "a.b", "--dir", str(keys), cwd=tmp_path)
    )
    done = dtf("auth", "revoke", "gpu-box-7", "--dir", str(keys), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert not (keys / "gpu-box-7.nk").exists()
    assert "gpu-box-7" not in (keys / auth.CONF).read_text()
    assert "no key named" in one_error_line(
        dtf("auth", "revoke", "gpu-box-7", "--dir", str(keys), cwd=tmp_path)
    )


def test_a_key_file_others_can_read_is_refused(tmp_path: Path, keys: Path) -> None:
    (keys / "viewer.nk").chmod(0o644)
    line = one_error_line(
        dtf("status", "--server", "nats://127.0.0.1:1", "--creds", str(keys / "viewer.nk"),
            cwd=tmp_path)
    )  # fmt: skip
    assert "may be read by others" in line and "chmod 600" in line
    garbage = tmp_path / "garbage.nk"
    garbage.write_text("not a key")
    garbage.chmod(0o600)
    env = {**os.environ, "DTF_CREDS": str(garbage)}
    line = one_error_line(dtf("status", "--server", "nats://127.0.0.1:1", cwd=tmp_path, env=env))
    assert "not an nkey seed" in line


def test_the_server_refuses_an_open_port_on_the_network(tmp_path: Path) -> None:
    line = one_error_line(dtf("server", "--host", "0.0.0.0", "--store", "st", cwd=tmp_path))
    assert "without --auth" in line and "--insecure" in line
    assert not (tmp_path / "st").exists()  # refused before anything started


# --- the real CLI on a secured server -----------------------------------------------------


def test_a_run_with_a_key_per_role_meets_no_refusal(
    secured_cli: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    _, url = secured_cli
    cluster = Cluster(url, tmp_path)
    try:
        role_env = lambda role: {**cluster.env, "DTF_CREDS": str(keys / f"{role}.nk")}  # noqa: E731
        cluster.start("coordinator", "coordinator", env=role_env("coordinator"))
        cluster.worker("worker", env=role_env("worker"))
        root = project(
            tmp_path, {"test_a.py": "def test_ok():\n    pass\n\ndef test_no():\n    assert 0\n"}
        )
        run = subprocess.run(
            [PY, "-m", "dtf", "run", "--no-progress", "--creds", str(keys / "submitter.nk")],
            cwd=root, env=cluster.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 1, run.stdout + run.stderr
        assert "1 failed, 1 passed" in run.stdout
        # A viewer reads everything back: the status, and the read models by replay.
        viewer = {**cluster.env, "DTF_CREDS": str(keys / "viewer.nk")}
        status = dtf("status", cwd=tmp_path, env=viewer)
        assert status.returncode == 0 and "runs: 1 known" in status.stdout, status.stderr
        replay = dtf("replay", "--db", str(tmp_path / "r.duckdb"), cwd=tmp_path, env=viewer)
        assert replay.returncode == 0, replay.stderr
        log = (tmp_path / "st" / "nats-server.log").read_text()
        violations = [line for line in log.splitlines() if "Violation" in line]
        assert not violations, violations
    finally:
        cluster.stop()


async def _connects(url: str, seed_file: Path) -> bool:
    """Whether the key signs in (and sets up): a refusal, also one that comes during the
    set-up because the server reloaded meanwhile, is False."""
    try:
        store = await EventStore.connect(url, creds=seed_file, timeout=10)
    except PermissionDenied:
        return False
    await store.close()
    return True


def test_a_revoked_key_is_refused_once_the_server_reloads(
    secured_cli: tuple[subprocess.Popen, str], keys: Path, tmp_path: Path
) -> None:
    _, url = secured_cli
    kept = stolen_copy(keys / "viewer.nk", tmp_path / "kept.nk")  # before the revocation
    assert asyncio.run(_connects(url, kept))
    done = dtf("auth", "revoke", "viewer", "--dir", str(keys), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    eventually(lambda: not asyncio.run(_connects(url, kept)), timeout=30, interval=0.2)
    assert asyncio.run(_connects(url, keys / "submitter.nk"))  # the others still sign in


def test_a_cluster_with_auth_runs_signed_and_reloads_every_node(keys: Path, tmp_path: Path) -> None:
    """`dtf server --cluster 3 --auth`: a run with a key per role passes on all three nodes,
    and a revoked key is refused by each of them after the reload."""
    proc = subprocess.Popen(
        [PY, "-m", "dtf", "server", "--cluster", "3", "--store", str(tmp_path / "st"),
         "--auth", str(keys)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    lines: list[str] = []
    cluster = None
    try:
        eventually(lambda: lines.append(proc.stdout.readline()) or "reloaded when" in lines[-1], 90)
        urls = next(line.split()[1] for line in lines if "--server" in line).split(",")
        cluster = Cluster(",".join(urls), tmp_path)
        role_env = lambda role: {**cluster.env, "DTF_CREDS": str(keys / f"{role}.nk")}  # noqa: E731
        cluster.start("coordinator", "coordinator", env=role_env("coordinator"))
        cluster.worker("worker", env=role_env("worker"))
        root = project(tmp_path, {"test_a.py": "def test_ok():\n    pass\n"})
        run = subprocess.run(
            [PY, "-m", "dtf", "run", "--no-progress", "--creds", str(keys / "submitter.nk")],
            cwd=root, env=cluster.env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0 and "1 passed" in run.stdout, run.stdout + run.stderr
        audit = dtf("audit", "verify", cwd=tmp_path, env=role_env("viewer"))
        assert audit.returncode == 0 and " 0 invalid" in audit.stdout, audit.stdout + audit.stderr

        kept = stolen_copy(keys / "viewer.nk", tmp_path / "kept.nk")  # before the revocation
        done = dtf("auth", "revoke", "viewer", "--dir", str(keys), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        for url in urls:
            eventually(lambda u=url: not asyncio.run(_connects(u, kept)), timeout=30, interval=0.2)
        assert all(asyncio.run(_connects(u, keys / "submitter.nk")) for u in urls)
    finally:
        if cluster is not None:
            cluster.stop()
        proc.terminate()
        proc.communicate(timeout=60)
