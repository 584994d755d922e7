"""Chaos: kill workers and the leading coordinator for real, freeze a worker past its TTL.

Each test asserts the exactly-once property from the event log (tests/support/audit.py), not just a
final count.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from pathlib import Path

import psutil

from dtf.errors import StoreError
from dtf.nats.lease import LEADER_BUCKET, LEADER_KEY
from dtf.nats.store import EventStore
from events.catalogue import TaskResultSuperseded, TaskStarted, WorkerLost
from tests.support.audit import check_exactly_once
from tests.support.cluster import Cluster, project
from tests.support.polling import eventually

SLOW_SUITE = {
    f"test_m{m}.py": "import time, pytest\n\n@pytest.mark.parametrize('n', range(4))\n"
    "def test_slow(n):\n    time.sleep(0.15)\n"
    for m in range(8)
}


def records(url: str):
    async def load():
        store = await EventStore.connect(url.split(","))
        try:
            return await store.load("dtf.evt.>", timeout=60)
        finally:
            await store.close()

    return asyncio.run(load())


def _readable(url: str):
    """The log, or None while the cluster that lost a node still elects a stream leader."""
    try:
        return records(url)
    except StoreError:
        return None


def started_on(url: str, worker: str) -> int:
    return sum(
        1 for r in records(url) if isinstance(r.event, TaskStarted) and r.event.worker_id == worker
    )


def finish(run: subprocess.Popen, root: Path) -> str:
    out, err = run.communicate(timeout=180)
    report = root / "r.json"
    if run.returncode != 0:  # say which tests failed and why: the summary alone does not
        cases = json.loads(report.read_text())["cases"] if report.exists() else []
        bad = [(c["nodeid"], c["outcome"], c["message"]) for c in cases if c["outcome"] != "passed"]
        raise AssertionError(
            f"dtf run exited {run.returncode}: {bad}\n{out[-3000:]}\n{err[-3000:]}"
        )
    return json.loads(report.read_text())["run_id"]


def test_workers_killed_repeatedly_mid_task(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, SLOW_SUITE)
    cluster.start("coordinator", "coordinator")
    for name in ("w1", "w2", "w3"):
        cluster.worker(name)
    run = cluster.run(root, ".", "--split", "test", "--json", "r.json", "--max-attempts", "5")
    url = cluster.url
    for victim, replacement in (("w1", "w4"), ("w2", "w5")):
        eventually(lambda v=victim: started_on(url, v) > 0, timeout=60, interval=0.1)
        cluster.procs[victim].send_signal(signal.SIGKILL)
        cluster.worker(replacement)
    run_id = finish(run, root)
    view = check_exactly_once(records(url), run_id)
    assert view.workers["w1"].status == "lost" and view.workers["w2"].status == "lost"


def test_leader_killed_mid_run(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, SLOW_SUITE)
    cluster.start("c1", "coordinator", "--id", "c1")
    cluster.start("c2", "coordinator", "--id", "c2")
    cluster.worker("w1", "--slots", "2")
    run = cluster.run(root, ".", "--split", "test", "--json", "r.json")
    url = cluster.url
    eventually(lambda: started_on(url, "w1") >= 3, timeout=60, interval=0.1)

    async def leader() -> str:
        store = await EventStore.connect(url)
        try:
            kv = await store.js.key_value(LEADER_BUCKET)
            return (await kv.get(LEADER_KEY)).value.decode()
        finally:
            await store.close()

    first = asyncio.run(leader())
    cluster.procs[first].send_signal(signal.SIGKILL)
    run_id = finish(run, root)
    log = records(url)
    check_exactly_once(log, run_id)
    terms = {getattr(r.event, "term", 0) for r in log} - {0}
    assert len(terms) >= 2, "the follower never took over"
    assert asyncio.run(leader()) != first


def test_frozen_worker_past_its_ttl_is_replaced_and_its_late_result_superseded(
    cluster: Cluster, tmp_path: Path
) -> None:
    gate = tmp_path / "frozen-once"
    root = project(
        tmp_path,
        {
            "test_f.py": "import pathlib, time\n\ndef test_f():\n"
            f"    p = pathlib.Path({str(gate)!r})\n"
            "    if not p.exists():\n        p.write_text('x')\n        time.sleep(2)\n",
            "test_g.py": "def test_g():\n    pass\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    frozen = cluster.worker("w1")
    run = cluster.run(root, ".", "--json", "r.json")
    eventually(gate.exists, timeout=60)
    frozen.send_signal(signal.SIGSTOP)
    cluster.worker("w2")
    url = cluster.url
    try:
        eventually(lambda: started_on(url, "w2") > 0, timeout=60, interval=0.2)
        run_id = finish(run, root)
    finally:
        frozen.send_signal(signal.SIGCONT)
    # Once resumed, w1 finishes its stale attempt; the write is refused and recorded as such.
    eventually(
        lambda: any(isinstance(r.event, TaskResultSuperseded) for r in records(url)),
        timeout=60,
        interval=0.2,
    )
    check_exactly_once(records(url), run_id)


def test_all_heartbeats_stopping_at_once_loses_no_worker(cluster: Cluster, tmp_path: Path) -> None:
    """Every heartbeat stops at once for twice the TTL, as when the heartbeat bucket's stream
    elects a new leader (4-7 s); here both workers are frozen so that it happens for sure.
    Silence from everyone is the coordinator's blindness, not every worker's death: nobody
    is declared lost, and the run finishes without retries."""
    root = project(tmp_path, SLOW_SUITE)
    cluster.start("coordinator", "coordinator")
    workers = [cluster.worker("w1"), cluster.worker("w2")]
    run = cluster.run(root, ".", "--split", "test", "--json", "r.json")
    url = cluster.url
    eventually(
        lambda: started_on(url, "w1") > 0 and started_on(url, "w2") > 0, timeout=60, interval=0.2
    )
    for worker in workers:
        worker.send_signal(signal.SIGSTOP)
    try:
        time.sleep(4.0)  # the length of the outage being caused, not a wait for a condition
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGCONT)
    run_id = finish(run, root)
    log = records(url)
    check_exactly_once(log, run_id)
    assert not [r.event for r in log if isinstance(r.event, WorkerLost)]


def test_two_coordinators_started_at_the_same_instant(cluster: Cluster, tmp_path: Path) -> None:
    root = project(tmp_path, SLOW_SUITE)
    a = cluster.start("c1", "coordinator", "--id", "c1")
    b = cluster.start("c2", "coordinator", "--id", "c2")
    assert a.poll() is None and b.poll() is None
    cluster.worker("w1", "--slots", "2")
    cluster.worker("w2", "--slots", "2")
    run = cluster.run(root, ".", "--split", "test", "--json", "r.json")
    run_id = finish(run, root)
    log = records(cluster.url)
    check_exactly_once(log, run_id)
    assert len({getattr(r.event, "term", 0) for r in log} - {0}) == 1  # one leader throughout


def test_nats_node_stopped_mid_run(nats3, tmp_path: Path) -> None:
    """One node of a 3-node cluster goes away mid-run; clients carry on with the others."""
    from tests.support.cluster import Cluster

    urls = ",".join(n.url for n in nats3)
    c = Cluster(urls, tmp_path)
    try:
        root = project(tmp_path, SLOW_SUITE)
        c.start("coordinator", "coordinator")
        c.worker("w1", "--slots", "2")
        c.worker("w2", "--slots", "2")
        run = c.run(root, ".", "--split", "test", "--json", "r.json")
        eventually(
            lambda: started_on(urls, "w1") + started_on(urls, "w2") >= 4, timeout=60, interval=0.2
        )
        nats3[0].process.send_signal(signal.SIGKILL)
        run_id = finish(run, root)
        survivors = ",".join(n.url for n in nats3[1:])
        check_exactly_once(eventually(lambda: _readable(survivors), timeout=60), run_id)

        async def replicas() -> int:
            store = await EventStore.connect(survivors.split(","))
            try:
                return (await store.js.stream_info("DTF_EVENTS")).config.num_replicas
            finally:
                await store.close()

        assert asyncio.run(replicas()) == 3
    finally:
        c.stop()


COUNTER = """
import json, os, pathlib, sys, time
ckpt = pathlib.Path(os.environ["DTF_CHECKPOINT_DIR"]) / "count"
start = int(ckpt.read_text()) if ckpt.exists() else 0
progress = pathlib.Path(sys.argv[1])
for i in range(start, 40):
    time.sleep(0.05)
    ckpt.write_text(str(i + 1))
    progress.write_text(str(i + 1))
json.dump({"resumed_from": start}, open(os.environ["DTF_RESULTS_FILE"], "w"))
"""


def test_checkpoint_survives_a_killed_worker(cluster: Cluster, tmp_path: Path) -> None:
    """A command counting to 40 is killed midway; the retry resumes from its checkpoint."""
    script = tmp_path / "counter.py"
    script.write_text(COUNTER)
    progress = tmp_path / "progress"
    root = project(tmp_path, {"README": "counter\n"})
    cluster.start("coordinator", "coordinator")
    victim = cluster.worker("w1")
    run = cluster.run(root, "--command", f"python {script} {progress}", "--json", "r.json")
    eventually(lambda: progress.exists() and int(progress.read_text() or 0) >= 25, timeout=60)
    url = cluster.url
    eventually(
        lambda: any(type(r.event).__name__ == "TaskCheckpointed" for r in records(url)),
        timeout=30,
    )
    cluster.worker("w2")
    victim.send_signal(signal.SIGKILL)
    finish(run, root)
    metrics = json.loads((root / "r.json").read_text())["extra"]["metrics"]
    [values] = metrics.values()
    assert values["resumed_from"] > 0


def test_straggler_gets_a_second_attempt_and_the_first_result_wins(
    cluster: Cluster, tmp_path: Path
) -> None:
    mark = tmp_path / "first-attempt.pid"
    root = project(
        tmp_path,
        {
            "test_s.py": "import os, pathlib, time\n\ndef test_straggler():\n"
            f"    mark = pathlib.Path({str(mark)!r})\n"
            "    if mark.exists():\n        return  # the speculative attempt: quick\n"
            "    mark.write_text(str(os.getpid()))\n"
            "    time.sleep(120)\n",
        },
    )
    cluster.start("coordinator", "coordinator", "--straggler-after", "2")
    cluster.worker("w1")
    run = cluster.run(root, ".", "--json", "r.json")
    eventually(mark.exists, timeout=60)
    slow_pid = int(eventually(lambda: mark.read_text().strip(), timeout=10))
    cluster.worker("w2")  # idle: the straggler's second attempt goes here
    run_id = finish(run, root)
    log = records(cluster.url)
    check_exactly_once(log, run_id)
    kinds = [type(r.event).__name__ for r in log]
    assert "TaskSpeculated" in kinds
    # The loser is cancelled and its pytest process killed; its late write is superseded.
    eventually(
        lambda: (
            not psutil.pid_exists(slow_pid)
            or psutil.Process(slow_pid).status() == psutil.STATUS_ZOMBIE
        ),
        timeout=30,
    )
    eventually(
        lambda: any(type(r.event).__name__ == "TaskResultSuperseded" for r in records(cluster.url)),
        timeout=30,
        interval=0.2,
    )


def test_worker_restarted_under_its_id_after_kill_9_still_drains(
    cluster: Cluster, tmp_path: Path
) -> None:
    """The killed process held an unacknowledged assignment on the worker's durable consumer
    (redelivered only after an hour); its successor takes it over at once, the run finishes,
    and SIGTERM drains the successor instead of waiting on the dead one's delivery."""
    gate = tmp_path / "started"
    root = project(
        tmp_path,
        {
            "test_k.py": "import pathlib, time\n\ndef test_k():\n"
            f"    pathlib.Path({str(gate)!r}).write_text('x')\n    time.sleep(1)\n",
            "test_l.py": "def test_l():\n    pass\n",
        },
    )
    cluster.start("coordinator", "coordinator")
    first = cluster.worker("w1")
    # Attempts to spare: on a loaded machine the restart may outlast the heartbeat TTL, and
    # the killed attempt is then given up on and retried, which is as correct.
    run = cluster.run(root, ".", "--json", "r.json", "--max-attempts", "5")
    eventually(gate.exists, timeout=60)
    first.send_signal(signal.SIGKILL)
    first.wait()
    (tmp_path / "w1.log").rename(tmp_path / "w1-first.log")
    second = cluster.worker("w1")
    run_id = finish(run, root)
    check_exactly_once(records(cluster.url), run_id)
    second.send_signal(signal.SIGTERM)
    assert second.wait(timeout=30) == 0


def test_worker_lost_with_only_a_speculative_twin_fails_the_twin(
    cluster: Cluster, tmp_path: Path
) -> None:
    """w2 runs nothing but the twin of w1's straggler when it is killed: the twin's attempt
    fails, and the original one on the healthy w1 runs on and gives the result."""
    first, twin, release = tmp_path / "first", tmp_path / "twin", tmp_path / "release"
    root = project(
        tmp_path,
        {
            "test_t.py": "import pathlib, time\n\ndef test_t():\n"
            f"    first, twin = pathlib.Path({str(first)!r}), pathlib.Path({str(twin)!r})\n"
            f"    release = pathlib.Path({str(release)!r})\n"
            "    mark = twin if first.exists() else first\n    mark.write_text('x')\n"
            "    while mark is first and not release.exists():\n        time.sleep(0.05)\n"
            "    while mark is twin:\n        time.sleep(1)\n",
        },
    )
    cluster.start("coordinator", "coordinator", "--straggler-after", "2")
    cluster.worker("w1")
    run = cluster.run(root, ".", "--json", "r.json")
    eventually(first.exists, timeout=60)
    victim = cluster.worker("w2")
    eventually(twin.exists, timeout=60)
    victim.send_signal(signal.SIGKILL)
    url = cluster.url
    eventually(
        lambda: any(isinstance(r.event, WorkerLost) for r in records(url)), timeout=30, interval=0.2
    )
    release.write_text("go")
    run_id = finish(run, root)
    view = check_exactly_once(records(url), run_id)
    [task] = view.tasks_of(run_id)
    assert (task.status, task.worker_id, task.attempt) == ("completed", "w1", 1)
