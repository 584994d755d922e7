"""Worker-side error reports: the system context a failure carries, the error history of
`dtf show worker`, and the simulated errors that exercise the pipeline."""

from __future__ import annotations

import asyncio
import subprocess
import time
from pathlib import Path

from dtf.nats.store import EventStore
from events.catalogue import (
    TaskFailed,
    TaskResultSuperseded,
    WorkerLost,
    WorkerQuarantined,
    WorkerRegistered,
)
from tests.support.cluster import PY, Cluster, project
from tests.support.polling import eventually
from tests.system.test_run_e2e import one_line_error
from tui.alerts.rules import conditions
from tui.fleet import Fleet


def dtf(*args: str, cluster: Cluster, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "dtf", *args], cwd=cwd, env=cluster.env, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip


def records_of(cluster: Cluster, subject: str) -> list:
    async def load() -> list:
        store = await EventStore.connect(cluster.url)
        try:
            return await store.load(subject)
        finally:
            await store.close()

    return asyncio.run(load())


def events_of(cluster: Cluster, subject: str, kind: type) -> list:
    return [r.event for r in records_of(cluster, subject) if isinstance(r.event, kind)]


def alerts(cluster: Cluster, since: float) -> dict[str, str]:
    """Title -> tier of what the dashboard's alert rules raise over the whole stream, for a
    dashboard started at `since`."""
    fleet = Fleet(started_at=since)
    for rec in records_of(cluster, "dtf.evt.>"):
        fleet.fold(rec)
    return {c.title: c.tier for c in conditions(fleet, time.time())}


def test_a_simulated_error_carries_context_is_retried_and_quarantines(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Every task w1 takes fails with the simulated error and the machine's state; the run
    still passes on w2; after three in a row w1 is quarantined, which the dashboard's alert
    rules raise; `dtf show worker` counts."""
    began = time.time()
    root = project(
        tmp_path,
        {f"test_{n}.py": f"def test_{n}():\n    pass\n" for n in range(4)},
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--simulate-error", "infrastructure:disk /data gone")
    run = cluster.run(root, "--split", "file", "--max-attempts", "10", ".")

    def failures() -> list[TaskFailed]:
        found = events_of(cluster, "dtf.evt.task.*.*.failed", TaskFailed)
        return [f for f in found if f.worker_id == "w1"]

    def quarantined() -> list:
        return events_of(cluster, "dtf.evt.worker.w1.>", WorkerQuarantined)

    eventually(quarantined, timeout=60, interval=0.3)
    cluster.worker("w2")
    out, err = run.communicate(timeout=90)
    assert run.returncode == 0, (out, err)
    assert "4 passed" in out

    first = failures()[0]
    assert (first.category, first.message) == ("infrastructure", "disk /data gone")
    ctx = first.context
    assert ctx is not None
    assert 0 <= ctx.memory_percent <= 100 and ctx.memory_available_gb > 0
    assert ctx.disk_free_gb > 0 and len(ctx.load) == 3 and ctx.cpu_percent >= 0

    shown = dtf("show", "worker", "w1", cluster=cluster, cwd=root)
    assert shown.returncode == 0, shown.stderr
    out = shown.stdout
    assert "worker w1: " in out and "cpu:" in out and "memory:" in out
    row = next(line for line in out.splitlines() if "disk /data gone" in line)
    assert row.strip("│ ").split()[0] == str(len(failures())) and "infrastructure" in row
    assert "system context of the latest" in out and "% used" in out

    raised = alerts(cluster, since=began)
    assert raised["worker w1 quarantined"] == "critical", raised
    assert raised[f"task {first.task_id} failed (infrastructure) on w1"] == "critical"


def test_a_crashing_test_reports_its_process_tree_and_output(
    cluster: Cluster, tmp_path: Path
) -> None:
    """A test that SIGKILLs its own pytest process: the failed attempt carries the tree seen
    while it ran (pytest and the child it started, with their RSS).  A SIGKILL reads as the
    OOM killer's, but with no larger worker registered the retry runs on the same one (it
    used to wait for ever for a larger machine) and passes."""
    mark = tmp_path / "crashed"
    root = project(
        tmp_path,
        {
            "test_crash.py": "import os, pathlib, signal, subprocess, time\n\n"
            "def test_crash():\n"
            f"    mark = pathlib.Path({str(mark)!r})\n"
            "    if mark.exists():\n        return  # the retry passes\n"
            "    mark.touch()\n"
            "    child = subprocess.Popen(['sleep', '30'])\n"
            "    time.sleep(2.5)  # long enough for the worker to sample the tree\n"
            "    child.kill()\n"
            "    os.kill(os.getpid(), signal.SIGKILL)\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    run = cluster.run(root, ".", "--json", "r.json")
    out, err = run.communicate(timeout=90)
    assert run.returncode == 0, (out, err)

    failed = events_of(cluster, "dtf.evt.task.*.*.failed", TaskFailed)
    assert len(failed) == 1 and failed[0].category == "infrastructure", failed
    assert "SIGKILL" in failed[0].message
    ctx = failed[0].context
    assert ctx is not None
    names = [p.name for p in ctx.processes]
    assert names[0].startswith("python") and "sleep" in names, ctx.processes
    assert all(p.rss_mb > 0 for p in ctx.processes if p.name.startswith("python"))
    assert ctx.processes_age_s < 10

    task_id = failed[0].task_id
    shown = dtf("show", "task", task_id, cluster=cluster, cwd=root)
    assert shown.returncode == 0, shown.stderr
    assert "system context (attempt 1)" in shown.stdout and "sleep" in shown.stdout


def test_a_bad_simulated_error_is_one_line(tmp_path: Path) -> None:
    result = subprocess.run(
        [PY, "-m", "dtf", "worker", "--simulate-error", "bogus:x", "--server", "nats://127.0.0.1:1"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "unknown category 'bogus'" in one_line_error(result)


def test_a_simulated_disconnect_loses_the_worker_retries_and_rejoins(
    cluster: Cluster, tmp_path: Path
) -> None:
    """w1's connection is cut for 8 s as its task starts: the coordinator hears only w2 and
    declares w1 lost, the attempt is retried on w2 and the run passes; when the connection is
    back, w1 finds it was declared lost (it could not hear it), registers again, and its late
    result is recorded as superseded.  The dashboard's alert rules raise both incidents."""
    began = time.time()
    marks = tmp_path / "marks"
    marks.mkdir()
    body = (
        "import pathlib, time\n\n"
        "def test_{n}():\n"
        f"    mark = pathlib.Path({str(marks)!r}) / '{{n}}'\n"
        "    if mark.exists():\n        return  # the retry\n"
        "    mark.touch()\n"
        "    time.sleep(6)\n"
    )
    root = project(tmp_path, {f"test_{n}.py": body.format(n=n) for n in "ab"})
    cluster.start("coordinator", "coordinator", "--lost-after", "2")
    cluster.worker("w1", "--simulate-disconnect", "8")
    cluster.worker("w2")
    run = cluster.run(root, "--split", "file", ".")
    out, err = run.communicate(timeout=90)
    assert run.returncode == 0, (out, err)
    assert "2 passed" in out

    lost = events_of(cluster, "dtf.evt.worker.w1.>", WorkerLost)
    assert len(lost) == 1 and "no heartbeat" in lost[0].reason
    failed = events_of(cluster, "dtf.evt.task.*.*.failed", TaskFailed)
    assert [(f.worker_id, f.category) for f in failed] == [("w1", "infrastructure")]

    def rejoined() -> bool:
        return len(events_of(cluster, "dtf.evt.worker.w1.>", WorkerRegistered)) == 2

    eventually(rejoined, timeout=30, interval=0.3)
    superseded = eventually(
        lambda: events_of(cluster, "dtf.evt.task.>", TaskResultSuperseded), timeout=30
    )
    assert superseded[0].worker_id == "w1" and superseded[0].task_id == failed[0].task_id
    log = (tmp_path / "w1.log").read_text()
    assert "simulating a network outage of 8s" in log
    assert "declared lost while disconnected; registering again" in log

    raised = alerts(cluster, since=began)
    assert raised["worker w1 lost"] == "critical", raised
    assert raised[f"task {failed[0].task_id} failed (infrastructure) on w1"] == "critical"


def test_a_bad_simulated_disconnect_is_one_line(tmp_path: Path) -> None:
    for value, server, says in (
        ("0", "nats://127.0.0.1:1", "above 0"),
        ("3", "tls://127.0.0.1:1", "relays nats:// only"),
    ):
        result = subprocess.run(
            [PY, "-m", "dtf", "worker", "--simulate-disconnect", value, "--server", server],
            cwd=tmp_path, capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert says in one_line_error(result)
