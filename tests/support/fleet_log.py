"""A recorded fleet, for the dashboard's tests: four workers (one lost, one quarantined), a
coordinator leading in term 3, a finished run with a failing test and a run in progress with
a timeout, an infrastructure failure and a retry, and a late result.  Times are offsets from
`base`, so the same log reads as fresh or as old history; ids are fixed, so screens are
reproducible (the SVG snapshots)."""

from __future__ import annotations

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
    TaskResultSuperseded,
    TaskRetryScheduled,
    TaskStarted,
    WorkerDraining,
    WorkerLost,
    WorkerQuarantined,
    WorkerRegistered,
)

COORDINATOR = "coord-a"
TERM = 3
WORKERS = ("cpu-1", "cpu-2", "gpu-1", "old-1")


def fleet_events(base: float) -> list[AnyEvent]:
    """The log, in order (see the module's docstring)."""
    n = 0
    events: list[AnyEvent] = []

    def add(cls, at: float, actor: str, **fields) -> None:
        nonlocal n
        n += 1
        events.append(cls(id=f"ev{n:04d}", at=base + at, actor=actor, **fields))

    linux = {"platform": "linux", "python": "3.11.7"}
    add(
        WorkerRegistered,
        0,
        "cpu-1",
        worker_id="cpu-1",
        slots=4,
        capabilities=Capabilities(hostname="box1", cpus=8, memory_gb=31.3, labels=("ci",), **linux),
    )
    add(
        WorkerRegistered,
        0.1,
        "cpu-2",
        worker_id="cpu-2",
        slots=2,
        capabilities=Capabilities(hostname="box2", cpus=4, memory_gb=15.6, **linux),
    )
    add(
        WorkerRegistered,
        0.2,
        "gpu-1",
        worker_id="gpu-1",
        slots=1,
        capabilities=Capabilities(
            hostname="gpu",
            cpus=32,
            memory_gb=251.5,
            labels=("gpu",),
            gpus=(Gpu("nvidia", "NVIDIA H100 80GB HBM3", 80.0),),
            **linux,
        ),
    )
    add(
        WorkerRegistered,
        0.3,
        "old-1",
        worker_id="old-1",
        slots=1,
        capabilities=Capabilities(hostname="old", cpus=2, memory_gb=3.8, **linux),
    )

    # Run 1: two tasks, finished; one test fails.
    r1 = "run-one"
    add(
        RunSubmitted,
        1,
        "client-ci",
        run_id=r1,
        task_ids=(f"{r1}.0", f"{r1}.1"),
        total_cases=4,
        args=("tests",),
        root="/src/app",
        labels={"commit": "abc1234", "branch": "main"},
    )
    for i, worker in enumerate(("cpu-1", "cpu-2")):
        tid = f"{r1}.{i}"
        add(
            TaskQueued,
            1.1 + i / 10,
            "client-ci",
            task_id=tid,
            run_id=r1,
            kind="pytest",
            nodeids=(f"tests/test_{i}.py::test_a", f"tests/test_{i}.py::test_b"),
        )
        add(TaskAssigned, 2 + i / 10, COORDINATOR, task_id=tid, worker_id=worker, term=TERM)
        add(TaskStarted, 2.5 + i / 10, worker, task_id=tid, worker_id=worker)
    add(
        TaskCompleted,
        5,
        "cpu-1",
        task_id=f"{r1}.0",
        worker_id="cpu-1",
        duration=2.5,
        cases=(
            CaseResult("tests/test_0.py::test_a", "passed", 1.0),
            CaseResult("tests/test_0.py::test_b", "passed", 1.5),
        ),
    )
    add(
        TaskCompleted,
        6,
        "cpu-2",
        task_id=f"{r1}.1",
        worker_id="cpu-2",
        duration=3.5,
        outcome="failed",
        exit_code=1,
        cases=(
            CaseResult("tests/test_1.py::test_a", "passed", 1.0),
            CaseResult("tests/test_1.py::test_b", "failed", 2.5, "assert 1 == 2"),
        ),
    )
    add(RunFinished, 6.1, COORDINATOR, run_id=r1, counts={"passed": 3, "failed": 1}, term=TERM)

    # Run 2: four tasks, in progress.
    r2 = "run-two"
    tasks = tuple(f"{r2}.{i}" for i in range(4))
    add(
        RunSubmitted,
        10,
        "client-ci",
        run_id=r2,
        task_ids=tasks,
        total_cases=8,
        args=("tests",),
        root="/src/app",
        labels={"commit": "def5678", "branch": "main"},
    )
    for i, tid in enumerate(tasks):
        add(
            TaskQueued,
            10.1 + i / 10,
            "client-ci",
            task_id=tid,
            run_id=r2,
            kind="pytest",
            nodeids=(f"tests/test_{i}.py::test_a", f"tests/test_{i}.py::test_b"),
        )
    add(TaskAssigned, 11, COORDINATOR, task_id=tasks[0], worker_id="cpu-1", term=TERM)
    add(TaskStarted, 11.2, "cpu-1", task_id=tasks[0], worker_id="cpu-1")
    add(
        TaskCompleted,
        14,
        "cpu-1",
        task_id=tasks[0],
        worker_id="cpu-1",
        duration=2.8,
        cases=(
            CaseResult("tests/test_0.py::test_a", "passed", 1.2),
            CaseResult("tests/test_0.py::test_b", "passed", 1.6),
        ),
    )
    add(TaskAssigned, 11.1, COORDINATOR, task_id=tasks[1], worker_id="old-1", term=TERM)
    add(TaskStarted, 11.3, "old-1", task_id=tasks[1], worker_id="old-1")
    add(
        TaskFailed,
        20,
        COORDINATOR,
        task_id=tasks[1],
        worker_id="old-1",
        category="timeout",
        message="no result within 600s",
        term=TERM,
    )
    add(
        TaskRetryScheduled,
        20.1,
        COORDINATOR,
        task_id=tasks[1],
        attempt=1,
        avoid=("old-1",),
        reason="timeout",
        term=TERM,
    )
    add(TaskAssigned, 11.2, COORDINATOR, task_id=tasks[2], worker_id="gpu-1", term=TERM)
    add(TaskStarted, 11.4, "gpu-1", task_id=tasks[2], worker_id="gpu-1")
    add(
        TaskFailed,
        21,
        "gpu-1",
        task_id=tasks[2],
        worker_id="gpu-1",
        category="infrastructure",
        message="pytest process died (signal 9): out of memory",
    )
    add(
        TaskRetryScheduled,
        21.1,
        COORDINATOR,
        task_id=tasks[2],
        attempt=1,
        avoid=("gpu-1",),
        min_memory_gb=64,
        reason="infrastructure",
        term=TERM,
    )
    add(TaskAssigned, 22, COORDINATOR, task_id=tasks[3], worker_id="cpu-2", term=TERM)
    add(TaskStarted, 22.2, "cpu-2", task_id=tasks[3], worker_id="cpu-2")
    add(
        TaskResultSuperseded,
        23,
        "old-1",
        task_id=tasks[1],
        worker_id="old-1",
        outcome="passed",
        message="attempt 1 was given up",
    )
    add(WorkerLost, 24, COORDINATOR, worker_id="old-1", reason="no heartbeat for 10s", term=TERM)
    add(
        WorkerQuarantined,
        25,
        COORDINATOR,
        worker_id="gpu-1",
        reason="3 infrastructure failures in a row",
        term=TERM,
    )
    add(WorkerDraining, 26, "cpu-2", worker_id="cpu-2")
    return events
