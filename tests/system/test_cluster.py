"""A real cluster: nats-server, coordinator and worker processes; failures caused for real."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
from pathlib import Path

import psutil

from dtf.nats.store import EventStore
from events.catalogue import TaskAssigned
from tests.support.cluster import PY, Cluster, project
from tests.support.polling import eventually, eventually_async
from tests.system.test_run_e2e import one_line_error


def dtf(*args: str, cluster: Cluster, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PY, "-m", "dtf", *args],
        cwd=cwd,
        env=cluster.env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_killed_worker_task_is_retried_elsewhere(cluster: Cluster, tmp_path: Path) -> None:
    """SIGKILL a worker mid-task: its task runs again on another worker; each test once."""
    mark = tmp_path / "blocked.pid"
    root = project(
        tmp_path,
        {
            "test_quick.py": "import pytest\n@pytest.mark.parametrize('n', range(5))\n"
            "def test_quick(n):\n    pass\n",
            "test_block.py": "import os, pathlib, time\n\ndef test_block():\n"
            f"    mark = pathlib.Path({str(mark)!r})\n"
            "    if mark.exists():\n        return  # the retry\n"
            "    mark.write_text(str(os.getpid()))\n"
            "    time.sleep(120)\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    victim = cluster.worker("w1")
    run = cluster.run(root, ".", "--json", "r.json")
    eventually(mark.exists, timeout=60)
    test_pid = int(eventually(lambda: mark.read_text().strip(), timeout=10))
    cluster.worker("w2")  # a healthy worker joins, then w1 dies mid-task
    victim.send_signal(signal.SIGKILL)
    out, err = run.communicate(timeout=90)
    assert run.returncode == 0, (out, err)
    report = json.loads((root / "r.json").read_text())
    assert len(report["cases"]) == 6
    assert {c["outcome"] for c in report["cases"]} == {"passed"}
    # The killed worker's pytest process does not outlive it.
    eventually(
        lambda: (
            not psutil.pid_exists(test_pid)
            or psutil.Process(test_pid).status() == psutil.STATUS_ZOMBIE
        ),
        timeout=15,
    )
    # The audit trail shows the loss, the failed attempt and the retry on w2.
    shown = dtf("show", "worker", "w1", cluster=cluster, cwd=root)
    assert shown.returncode == 0 and "worker.lost" in shown.stdout
    run_log = dtf("show", "run", report["run_id"], cluster=cluster, cwd=root).stdout
    assert "task.retry_scheduled" in run_log and "avoid=" in run_log


def test_assignment_made_while_worker_is_unresponsive_still_arrives(
    cluster: Cluster, tmp_path: Path
) -> None:
    root = project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    cluster.start("coordinator", "coordinator", "--lost-after", "60")
    worker = cluster.worker("w1")
    worker.send_signal(signal.SIGSTOP)
    try:
        run = cluster.run(root, ".")

        async def assigned() -> bool:
            store = await EventStore.connect(cluster.url)
            try:
                records = await store.load("dtf.evt.task.>")
            finally:
                await store.close()
            return any(isinstance(r.event, TaskAssigned) for r in records)

        eventually(lambda: asyncio.run(assigned()), timeout=60, interval=0.2)
    finally:
        worker.send_signal(signal.SIGCONT)
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, (out, err)
    assert "1 passed" in out


def test_worker_environment_that_cannot_import_reports_errors(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The suite imports a module only the submitting machine has: errors, not a hang."""
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "only_here.py").write_text("VALUE = 1\n")
    root = project(
        tmp_path,
        {
            "conftest.py": "import only_here\n",
            "test_a.py": "def test_a():\n    pass\n\ndef test_b():\n    pass\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    run = subprocess.run(
        [PY, "-m", "dtf", "run", "--no-progress", ".", "--json", "r.json"],
        cwd=root,
        env={**cluster.env, "PYTHONPATH": str(extra)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 1, (run.stdout, run.stderr)
    report = json.loads((root / "r.json").read_text())
    assert [c["outcome"] for c in report["cases"]] == ["error", "error"]
    assert any("only_here" in c["message"] + c["longrepr"] for c in report["cases"])


def test_a_requirement_no_worker_ever_offered_is_one_clear_error(
    cluster: Cluster, tmp_path: Path
) -> None:
    root = project(
        tmp_path,
        {
            "test_a.py": "import pytest\n\ndef test_cpu():\n    pass\n\n"
            "@pytest.mark.dtf_requires(gpu_vendor='amd', compute_capability=9.4)\n"
            "def test_mi300():\n    pass\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    # Part of the suite: those tests are skipped, saying why, and the rest runs.
    run = cluster.run(root, ".", "--json", "r.json")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 0, (out, err)
    assert "1 test(s) skipped: no worker of this fleet has ever offered" in out
    cases = {c["nodeid"]: c for c in json.loads((root / "r.json").read_text())["cases"]}
    assert cases["test_a.py::test_cpu"]["outcome"] == "passed"
    mi300 = cases["test_a.py::test_mi300"]
    assert mi300["outcome"] == "skipped"
    assert "compute_capability=9.4" in mi300["message"] and "gpu_vendor=amd" in mi300["message"]
    # All of it: one line and exit 2, nothing submitted to wait forever.
    for argv in (
        [".", "--requires", "cpu_flags=sme2"],
        ["--requires", "gpu_vendor=amd", "--command", "true"],
    ):
        refused = dtf("run", "--no-progress", *argv, cluster=cluster, cwd=root)
        assert refused.returncode == 2, refused
        line = one_line_error(refused)
        assert "no worker of this fleet has ever offered" in line
        assert "sme2" in line or "gpu_vendor=amd" in line


def test_inspection_commands(cluster: Cluster, tmp_path: Path) -> None:
    root = project(
        tmp_path, {"test_a.py": "def test_a():\n    pass\n\ndef test_b():\n    assert 0\n"}
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--label", "fast")
    run = cluster.run(root, ".", "--json", "r.json")
    run.communicate(timeout=120)
    assert run.returncode == 1
    run_id = json.loads((root / "r.json").read_text())["run_id"]

    status = dtf("status", cluster=cluster, cwd=root)
    assert status.returncode == 0, status.stderr
    assert "w1" in status.stdout and "fast" in status.stdout
    assert "coordinator: " in status.stdout and "none leads" not in status.stdout

    shown = dtf("show", "run", run_id, cluster=cluster, cwd=root)
    assert shown.returncode == 0, shown.stderr
    for word in (
        "run.submitted",
        "task.queued",
        "task.assigned",
        "task.started",
        "task.completed",
        "run.finished",
    ):
        assert word in shown.stdout, word
    task = dtf("show", "task", f"{run_id}.0", cluster=cluster, cwd=root)
    assert "test_a.py::test_a" in task.stdout and "failed" in task.stdout

    recent = dtf("show", "all", "--since", "1h", cluster=cluster, cwd=root)
    assert "run.finished" in recent.stdout and "worker.registered" in recent.stdout
    assert "term=" in recent.stdout  # leader terms are part of the audit
    old = dtf("show", "all", "--until", "1h", cluster=cluster, cwd=root)
    assert old.returncode == 2 and "no events in that time range" in old.stderr
    missing = dtf("show", "task", "nope.1", cluster=cluster, cwd=root)
    assert missing.returncode == 2 and missing.stderr.startswith("dtf: error: no events")
    bad = dtf("show", "task", "a.b.c", cluster=cluster, cwd=root)
    assert bad.returncode == 2 and "not a task id" in bad.stderr

    tail = subprocess.Popen(
        [PY, "-m", "dtf", "events", "tail", "--all"],
        env=cluster.env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        lines = []
        assert tail.stdout is not None
        for line in tail.stdout:
            lines.append(line)
            if "run.finished" in line:
                break
        assert any("worker.registered" in line for line in lines)
    finally:
        tail.send_signal(signal.SIGINT)
        tail.communicate(timeout=60)  # keeps reading, so a full pipe cannot block its exit
    assert tail.returncode == 0


def test_sigterm_drains_the_worker(cluster: Cluster, tmp_path: Path) -> None:
    """A draining worker finishes the task it runs, takes nothing new, and deregisters."""
    gate = tmp_path / "gate"
    started = tmp_path / "started"
    root = project(
        tmp_path,
        {
            "test_slow.py": "import pathlib, time\n\ndef test_slow():\n"
            f"    pathlib.Path({str(started)!r}).write_text('1')\n"
            f"    while not pathlib.Path({str(gate)!r}).exists():\n"
            "        time.sleep(0.01)\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    worker = cluster.worker("w1")
    run = cluster.run(root, ".")
    eventually(started.exists, timeout=60)
    worker.send_signal(signal.SIGTERM)
    shown = lambda: dtf("show", "worker", "w1", cluster=cluster, cwd=root).stdout  # noqa: E731
    eventually(lambda: "worker.draining" in shown(), timeout=30, interval=0.2)
    assert worker.poll() is None  # still finishing its task
    gate.write_text("go")
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, (out, err)
    assert worker.wait(timeout=30) == 0
    assert "worker.stopped" in shown()


def test_task_timeout_kills_the_test(cluster: Cluster, tmp_path: Path) -> None:
    root = project(
        tmp_path,
        {
            "test_t.py": "import time\n\ndef test_hangs():\n    time.sleep(300)\n\n"
            "def test_after():\n    pass\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    run = cluster.run(root, ".", "--timeout", "3", "--json", "r.json")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, (out, err)
    cases = {c["nodeid"]: c for c in json.loads((root / "r.json").read_text())["cases"]}
    assert cases["test_t.py::test_hangs"]["outcome"] == "error"
    assert "timeout" in cases["test_t.py::test_hangs"]["message"]
    assert cases["test_t.py::test_after"]["outcome"] == "error"  # never ran: same task


def test_coordinator_answers_recorded_durations(cluster: Cluster, tmp_path: Path) -> None:
    import msgspec
    import nats

    from events.api import PLAN_SUBJECT, PlanReply, PlanRequest

    root = project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1", "--slots", "3")
    run = cluster.run(root, ".")
    run.communicate(timeout=120)
    assert run.returncode == 0

    async def ask() -> PlanReply:
        nc = await nats.connect(cluster.url)
        try:
            msg = await nc.request(
                PLAN_SUBJECT,
                msgspec.json.encode(PlanRequest(["test_a.py::test_a", "unknown"])),
                timeout=5,
            )
        finally:
            await nc.close()
        return msgspec.json.decode(msg.data, type=PlanReply)

    reply = asyncio.run(ask())
    assert list(reply.durations) == ["test_a.py::test_a"]
    assert reply.slots == 3 and reply.workers == 1


def test_quarantine_after_repeated_infrastructure_failures_then_health_check(
    cluster: Cluster, tmp_path: Path
) -> None:
    """Three crashes in a row quarantine the worker; its health check passes and it is back."""
    crash = "import os\n\ndef test_crash():\n    os._exit(3)\n"
    files = {f"test_c{i}.py": crash for i in range(3)}
    files["test_z.py"] = "def test_ok():\n    pass\n"
    root = project(tmp_path, files)
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    run = cluster.run(root, ".", "--max-attempts", "1", "--json", "r.json")
    out, err = run.communicate(timeout=120)
    assert run.returncode == 1, (out, err)
    cases = {c["nodeid"]: c["outcome"] for c in json.loads((root / "r.json").read_text())["cases"]}
    assert cases["test_z.py::test_ok"] == "passed"
    assert [cases[f"test_c{i}.py::test_crash"] for i in range(3)] == ["error"] * 3
    audit = dtf("show", "worker", "w1", cluster=cluster, cwd=root).stdout
    assert "worker.quarantined" in audit and "worker.enabled" in audit
    assert audit.index("worker.quarantined") < audit.index("worker.enabled")
    assert "health" in dtf("show", "all", "--since", "1h", cluster=cluster, cwd=root).stdout


def test_operator_disables_then_enables_a_worker(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    assert dtf("worker", "disable", "w1", cluster=cluster, cwd=root).returncode == 0
    eventually(lambda: "disabled" in dtf("status", cluster=cluster, cwd=root).stdout, timeout=30)
    run = cluster.run(root, ".")
    eventually(
        lambda: (
            "task.queued" in dtf("show", "all", "--since", "1h", cluster=cluster, cwd=root).stdout
        ),
        timeout=60,
        interval=0.3,
    )
    assert run.poll() is None  # nobody may take the task while w1 is disabled
    enabled = dtf("worker", "enable", "w1", cluster=cluster, cwd=root)
    assert enabled.returncode == 0, enabled.stderr
    out, err = run.communicate(timeout=60)
    assert run.returncode == 0, (out, err)


def test_operator_disable_and_drain(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, {"test_a.py": "def test_a():\n    pass\n"})
    cluster.start("coordinator", "coordinator")
    w1 = cluster.worker("w1")
    cluster.worker("w2")
    assert dtf("worker", "disable", "w2", cluster=cluster, cwd=root).returncode == 0
    unknown = dtf("worker", "drain", "nobody", cluster=cluster, cwd=root)
    assert unknown.returncode == 2 and "no worker nobody" in unknown.stderr
    run = cluster.run(root, ".", "--json", "r.json")
    run.communicate(timeout=60)
    assert run.returncode == 0
    shown = dtf(
        "show",
        "run",
        json.loads((root / "r.json").read_text())["run_id"],
        cluster=cluster,
        cwd=root,
    ).stdout
    assert "assigned.w1" in shown and "assigned.w2" not in shown
    assert dtf("worker", "drain", "w1", cluster=cluster, cwd=root).returncode == 0
    assert w1.wait(timeout=30) == 0  # drained on request, exited cleanly


def test_ctrl_c_cancels_the_run_on_the_cluster(cluster: Cluster, tmp_path: Path) -> None:
    """The client records the cancellation and leaves; the coordinator cancels the task and
    the worker kills the test it was running."""
    root = project(
        tmp_path,
        {
            "test_sleep.py": "import os, pathlib, time\n\ndef test_sleeps():\n"
            f"    pathlib.Path({str(tmp_path / 'started')!r}).write_text(str(os.getpid()))\n"
            "    time.sleep(120)\n"
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    run = cluster.run(root, ".")
    started = tmp_path / "started"
    eventually(lambda: started.exists() and started.read_text(), timeout=60)
    test_pid = int(started.read_text())
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=20)  # a bound on hanging, not a measurement
    assert run.returncode == 2 and err.strip() == "dtf: interrupted", err
    eventually(
        lambda: (
            not psutil.pid_exists(test_pid)
            or psutil.Process(test_pid).status() == psutil.STATUS_ZOMBIE
        ),
        timeout=30,
    )
    shown = dtf("show", "all", "--since", "1h", cluster=cluster, cwd=root).stdout
    assert "run.cancel_requested" in shown and "task.cancelled" in shown


def test_workers_report_each_test_as_it_ends(cluster: Cluster, tmp_path: Path) -> None:
    """Progress notes for the tests of one task arrive before the task's result does."""
    root = project(
        tmp_path,
        {
            "test_many.py": "import pytest, time\n\n@pytest.mark.parametrize('n', range(8))\n"
            "def test_n(n):\n    time.sleep(0.05)\n"
        },
    )
    cluster.start("coordinator", "coordinator")
    cluster.worker("w1")
    arrivals: list[str] = []

    async def scenario() -> None:
        store = await EventStore.connect(cluster.url)
        try:
            notes = await store.listen("dtf.progress.>", lambda _s, _d: arrivals.append("note"))

            def on_event(rec) -> None:
                if type(getattr(rec, "event", None)).__name__ == "TaskCompleted":
                    arrivals.append("completed")

            events = await store.follow("dtf.evt.task.>", on_event, new_only=True)
            run = await asyncio.create_subprocess_exec(
                PY, "-m", "dtf", "run", "--no-progress", "--split", "file", ".",
                cwd=root, env=cluster.env, stdout=subprocess.DEVNULL,
            )  # fmt: skip
            assert await run.wait() == 0
            await eventually_async(lambda: "completed" in arrivals, timeout=30)
            await notes.stop()
            await events.stop()
        finally:
            await store.close()

    asyncio.run(scenario())
    assert arrivals == ["note"] * 8 + ["completed"], arrivals
