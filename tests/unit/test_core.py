"""The pure core with plain values: folding events, scheduling, splitting."""

from __future__ import annotations

import pytest

from dtf.core.requirements import parse, satisfies, spec
from dtf.core.scheduling import schedule, strategy
from dtf.core.scheduling.protocol import WorkerSlots, free_workers
from dtf.core.splitting import Item, split
from dtf.core.state import View, evolve_task
from events.catalogue import (
    Capabilities,
    CaseResult,
    Gpu,
    Requirements,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskSpeculated,
    TaskStarted,
    WorkerEnabled,
    WorkerQuarantined,
    WorkerRegistered,
)

CPU = Capabilities(platform="linux", hostname="h", cpus=8, memory_gb=32)
GPU = Capabilities(
    platform="linux",
    hostname="g",
    cpus=32,
    memory_gb=256,
    gpus=(Gpu("nvidia", "H100", 80.0),),
    labels=("fast",),
)


def ev(cls, n: int, **fields):
    return cls(id=f"e{n}", at=float(n), actor="t", **fields)


def q(task: str, n: int = 0, **fields) -> TaskQueued:
    return ev(TaskQueued, n, task_id=task, run_id=task.split(".")[0], kind="pytest", **fields)


def test_task_lifecycle() -> None:
    s = evolve_task(None, q("r.0", nodeids=("a",)), seq=1)
    assert s is not None and s.status == "queued"
    s = evolve_task(s, ev(TaskAssigned, 2, task_id="r.0", worker_id="w", attempt=1))
    assert s.status == "assigned" and s.worker_id == "w"
    s = evolve_task(s, ev(TaskStarted, 3, task_id="r.0", worker_id="w", attempt=1))
    assert s.status == "running"
    done = ev(
        TaskCompleted,
        4,
        task_id="r.0",
        worker_id="w",
        attempt=1,
        cases=(CaseResult("a", "passed", 0.5),),
    )
    s = evolve_task(s, done)
    assert s.status == "completed" and s.terminal
    # Anything after a terminal event changes nothing.
    assert evolve_task(s, ev(TaskFailed, 5, task_id="r.0", attempt=1)) is s


def test_stale_attempt_is_ignored() -> None:
    s = evolve_task(None, q("r.0"), seq=1)
    s = evolve_task(s, ev(TaskAssigned, 2, task_id="r.0", worker_id="w", attempt=2))
    assert evolve_task(s, ev(TaskStarted, 3, task_id="r.0", worker_id="w", attempt=1)) is s


def test_view_counts_unknown_and_duplicate_events() -> None:
    view = View()
    assert not view.apply(ev(TaskStarted, 1, task_id="r.9", worker_id="w"), 1)
    assert view.ignored == 1
    assert view.apply(q("r.0"), 2)
    assert not view.apply(q("r.0"), 2)  # the same sequence again: already applied


def test_view_tracks_slots_durations_and_run_completion() -> None:
    view = View()
    view.apply(ev(WorkerRegistered, 1, worker_id="w", capabilities=CPU, slots=2), 1)
    view.apply(ev(RunSubmitted, 2, run_id="r", task_ids=("r.0", "r.1")), 2)
    view.apply(q("r.0", nodeids=("a",)), 3)
    view.apply(q("r.1", nodeids=("b",)), 4)
    assert view.free_slots("w") == 2 and len(view.queued()) == 2
    view.apply(ev(TaskAssigned, 5, task_id="r.0", worker_id="w"), 5)
    assert view.free_slots("w") == 1 and len(view.queued()) == 1
    view.apply(
        ev(TaskCompleted, 6, task_id="r.0", worker_id="w", cases=(CaseResult("a", "passed", 1.5),)),
        6,
    )
    assert view.free_slots("w") == 2 and view.durations == {"a": 1.5}
    assert not view.run_done("r")
    view.apply(ev(TaskAssigned, 7, task_id="r.1", worker_id="w"), 7)
    view.apply(
        ev(
            TaskFailed,
            8,
            task_id="r.1",
            worker_id="w",
            category="environment",
            cases=(CaseResult("b", "error"),),
        ),
        8,
    )
    assert view.run_done("r")
    assert view.run_counts("r") == {"passed": 1, "error": 1}
    view.apply(ev(RunFinished, 9, run_id="r"), 9)
    assert view.runs["r"].finished is not None


def test_requirements() -> None:
    assert satisfies(CPU, Requirements())
    assert not satisfies(CPU, Requirements(gpus=1))
    assert satisfies(GPU, parse("gpus=1,gpu_vendor=NVIDIA,gpu_memory_gb=40,label=fast"))
    assert not satisfies(GPU, parse("gpus=2"))
    assert not satisfies(CPU, parse("memory_gb=64"))
    assert not satisfies(GPU, parse("platform=darwin"))
    for bad in ("gpus", "colour=red", "cpus=many"):
        try:
            parse(bad)
        except ValueError:
            continue
        raise AssertionError(f"{bad!r} parsed")


def test_cpu_flag_and_compute_capability_requirements() -> None:
    xeon = Capabilities(
        platform="linux",
        hostname="x",
        cpus=8,
        memory_gb=8,
        cpu_flags=("avx2", "avx512f", "amx_tile"),
    )
    h100 = Capabilities(
        platform="linux",
        hostname="h",
        cpus=8,
        memory_gb=8,
        gpus=(Gpu("nvidia", "H100", 80, compute_capability="9.0"), Gpu("nvidia", "T4", 16)),
    )
    req = parse("gpu_vendor=nvidia, cpu_flags=AVX512F, cpu_flag=amx_tile, compute_capability>=8.0")
    assert req == Requirements(
        gpu_vendor="nvidia", cpu_flags=("avx512f", "amx_tile"), compute_capability=8.0
    )
    assert parse(spec(req)) == req
    assert satisfies(xeon, parse("cpu_flags=avx512f,cpu_flags=avx2"))
    assert not satisfies(xeon, parse("cpu_flags=asimd"))
    assert satisfies(h100, parse("compute_capability>=9"))
    # The T4 reports no capability (an old driver): never enough, so two such GPUs are not there.
    assert not satisfies(h100, parse("gpus=2,compute_capability>=7.5"))
    assert parse("cpus>=4") == parse("cpus=4")
    with pytest.raises(ValueError, match="not an amount"):
        parse("platform>=linux")


def _view_with(tasks: list[TaskQueued], workers: list[tuple[str, Capabilities, int]]) -> View:
    view = View()
    seq = 0
    for worker_id, caps, slots in workers:
        seq += 1
        view.apply(
            ev(WorkerRegistered, seq, worker_id=worker_id, capabilities=caps, slots=slots), seq
        )
    for task in tasks:
        seq += 1
        view.apply(task, seq)
    return view


def test_least_loaded_respects_priority_capability_and_slots() -> None:
    tasks = [
        q("r.0", 1),
        q("r.1", 2, priority=5),
        q("r.2", 3, requirements=Requirements(gpus=1)),
        q("r.3", 4),
        q("r.4", 5),
    ]
    view = _view_with(tasks, [("cpu", CPU, 2), ("gpu", GPU, 1)])
    decisions = schedule(strategy("least-loaded"), view.queued(), free_workers(view))
    by_task = {d.task_id: d.worker_id for d in decisions}
    assert next(iter(by_task)) == "r.1"  # highest priority first
    assert len(decisions) == 3  # three free slots in all
    assert "r.2" not in by_task or by_task["r.2"] == "gpu"
    assert sum(1 for w in by_task.values() if w == "cpu") <= 2


def test_duration_aware_starts_longest_first_and_balances() -> None:
    tasks = [q(f"r.{i}", i, expected_duration=d) for i, d in enumerate([1, 9, 3, 7])]
    view = _view_with(tasks, [("a", CPU, 1), ("b", CPU, 1)])
    decisions = schedule(strategy("duration"), view.queued(), free_workers(view))
    assert [d.task_id for d in decisions] == ["r.1", "r.3"]
    assert {d.worker_id for d in decisions} == {"a", "b"}


def test_task_needing_missing_hardware_stays_queued() -> None:
    view = _view_with([q("r.0", requirements=Requirements(gpus=4))], [("a", GPU, 4)])
    assert schedule(strategy("duration"), view.queued(), free_workers(view)) == []


def test_unknown_strategy_names_the_known_ones() -> None:
    try:
        strategy("fastest")
    except ValueError as exc:
        assert "least-loaded" in str(exc)
    else:
        raise AssertionError


def test_split_by_file_keeps_order_and_cuts_big_files() -> None:
    items = [Item(f"a.py::t{i}", "a.py") for i in range(100)] + [Item("b.py::t", "b.py")]
    plans = split(items, slots=2, durations={f"a.py::t{i}": 0.1 for i in range(100)})
    flat = [n for p in plans for n in p.nodeids]
    assert flat == [i.nodeid for i in items]
    assert len(plans) > 2  # 10 s of a.py over 2 slots is cut into chunks
    assert max(p.expected for p in plans) <= 10.0 / 8 + 0.1 + 1e-9


def test_split_separates_requirements_and_supports_per_test() -> None:
    gpu = Requirements(gpus=1)
    items = [Item("a.py::x", "a.py"), Item("a.py::y", "a.py", gpu), Item("a.py::z", "a.py")]
    plans = split(items, slots=4)
    assert [p.requirements for p in plans] == [Requirements(), gpu]
    assert len(split(items, slots=4, mode="test")) == 3


def test_free_workers_reports_backlog() -> None:
    view = _view_with([q("r.0", expected_duration=4.0)], [("a", CPU, 2)])
    view.apply(ev(TaskAssigned, 50, task_id="r.0", worker_id="a"), 50)
    [slots] = free_workers(view)
    assert isinstance(slots, WorkerSlots) and slots.free == 1 and slots.backlog == 4.0


def test_retryable_failure_waits_for_a_retry_decision() -> None:
    s = evolve_task(None, q("r.0", max_attempts=2), seq=1)
    s = evolve_task(s, ev(TaskAssigned, 2, task_id="r.0", worker_id="w", attempt=1))
    s = evolve_task(s, ev(TaskFailed, 3, task_id="r.0", worker_id="w", category="timeout"))
    assert s is not None and s.status == "retrying" and not s.terminal
    s = evolve_task(
        s, ev(TaskRetryScheduled, 4, task_id="r.0", attempt=1, not_before=9.0, avoid=("w",))
    )
    assert s.status == "queued" and s.avoid == ("w",) and s.not_before == 9.0
    s = evolve_task(s, ev(TaskAssigned, 5, task_id="r.0", worker_id="v", attempt=2))
    # A late result of the first attempt changes nothing.
    assert evolve_task(s, ev(TaskCompleted, 6, task_id="r.0", worker_id="w", attempt=1)) is s
    s = evolve_task(
        s, ev(TaskFailed, 7, task_id="r.0", worker_id="v", attempt=2, category="infrastructure")
    )
    assert s.status == "failed" and s.terminal  # attempts used up


def test_test_failures_and_environment_errors_are_not_retried() -> None:
    s = evolve_task(None, q("r.0"), seq=1)
    s = evolve_task(s, ev(TaskAssigned, 2, task_id="r.0", worker_id="w", attempt=1))
    assert evolve_task(s, ev(TaskFailed, 3, task_id="r.0", category="environment")).terminal


def test_worker_quarantine_and_enable() -> None:
    view = View()
    view.apply(ev(WorkerRegistered, 1, worker_id="w", capabilities=CPU), 1)
    view.apply(ev(WorkerQuarantined, 2, worker_id="w", reason="3 failures"), 2)
    assert view.free_slots("w") == 0
    view.apply(ev(WorkerEnabled, 3, worker_id="w"), 3)
    assert view.free_slots("w") == 1


def test_retry_prefers_another_worker_and_escalates_memory() -> None:
    from msgspec.structs import replace

    big = Capabilities(platform="linux", hostname="b", cpus=8, memory_gb=64)
    view = _view_with([q("r.0")], [("a", CPU, 1), ("b", big, 1)])
    task = replace(view.tasks["r.0"], avoid=("b",))
    [d] = schedule(strategy("least-loaded"), [task], free_workers(view))
    assert d.worker_id == "a"
    task = replace(task, avoid=("a",), min_memory_gb=CPU.memory_gb)
    [d] = schedule(strategy("duration"), [task], free_workers(view))
    assert d.worker_id == "b"
    only_a = [w for w in free_workers(view) if w.worker_id == "a"]
    assert schedule(strategy("duration"), [task], only_a) == []  # a is too small now


def test_backoff_has_full_jitter_and_a_cap() -> None:
    from dtf.core.retry import backoff, resource_exhaustion

    assert backoff(1, 0.0) == 0.0
    assert backoff(1, 1.0) == 0.5 and backoff(3, 1.0) == 2.0
    assert backoff(30, 1.0) == 30.0
    assert resource_exhaustion("pytest process killed by signal SIGKILL")
    assert not resource_exhaustion("timeout after 3s")
    for said in (
        "OOM-killed",
        "oom_kill event in cgroup",
        "MemoryError",
        "No space left on device",
    ):
        assert resource_exhaustion(said), said
    # A worker's id is in the message of its loss, and must not read as an exhaustion.
    for said in ("worker doomed-3 lost", "worker zoom-01 lost", "room3 stopped beating"):
        assert not resource_exhaustion(said), said


def test_large_queue_is_scheduled_in_the_same_order_as_a_full_sort() -> None:
    tasks = [q(f"r.{i}", i, expected_duration=float((i * 37) % 101)) for i in range(300)]
    view = _view_with(tasks, [("a", CPU, 3), ("b", CPU, 2)])
    decisions = schedule(strategy("duration"), view.queued(), free_workers(view))
    longest = sorted(enumerate(tasks), key=lambda it: (-it[1].expected_duration, it[0]))[:5]
    longest = [t for _, t in longest]
    assert {d.task_id for d in decisions} == {t.task_id for t in longest}
    # A head full of tasks nobody can run does not hide runnable ones behind it.
    blocked = [q(f"s.{i}", i, priority=9, requirements=Requirements(gpus=8)) for i in range(100)]
    view = _view_with([*blocked, q("s.999", 999)], [("a", CPU, 1)])
    [d] = schedule(strategy("least-loaded"), view.queued(), free_workers(view))
    assert d.task_id == "s.999"


def _running(view: View, task: str = "r.0") -> None:
    view.apply(ev(WorkerRegistered, 1, worker_id="w", capabilities=CPU), 1)
    view.apply(ev(WorkerRegistered, 2, worker_id="v", capabilities=CPU), 2)
    view.apply(q(task), 3)
    view.apply(ev(TaskAssigned, 4, task_id=task, worker_id="w", attempt=1), 4)
    view.apply(ev(TaskStarted, 5, task_id=task, worker_id="w", attempt=1), 5)
    view.apply(ev(TaskSpeculated, 6, task_id=task, worker_id="v", attempt=2), 6)


def test_speculative_attempt_first_result_wins() -> None:
    view = View()
    _running(view)
    assert view.tasks["r.0"].live_attempts == (1, 2)
    assert view.free_slots("w") == 0 and view.free_slots("v") == 0
    view.apply(ev(TaskStarted, 7, task_id="r.0", worker_id="v", attempt=2), 7)
    view.apply(
        ev(
            TaskCompleted,
            8,
            task_id="r.0",
            worker_id="v",
            attempt=2,
            cases=(CaseResult("a", "passed"),),
        ),
        8,
    )
    task = view.tasks["r.0"]
    assert task.status == "completed" and task.worker_id == "v" and task.attempt == 2
    assert view.losers == {"r.0": 1}
    assert view.free_slots("w") == 1 and view.free_slots("v") == 1
    # The loser's late result changes nothing; cancelling it clears the bookkeeping.
    assert not view.apply(ev(TaskCompleted, 9, task_id="r.0", worker_id="w", attempt=1), 9)
    view.apply(ev(TaskCancelled, 10, task_id="r.0", attempt=1), 10)
    assert view.losers == {} and view.tasks["r.0"].status == "completed"


def test_failure_of_one_attempt_leaves_the_other_running() -> None:
    view = View()
    _running(view)
    view.apply(
        ev(TaskFailed, 7, task_id="r.0", worker_id="w", attempt=1, category="infrastructure"), 7
    )
    task = view.tasks["r.0"]
    assert task.status == "running" and task.worker_id == "v" and task.attempt == 2
    assert view.free_slots("w") == 1 and view.free_slots("v") == 0
    view = View()
    _running(view)
    view.apply(ev(TaskFailed, 7, task_id="r.0", worker_id="v", attempt=2, category="timeout"), 7)
    task = view.tasks["r.0"]
    assert task.status == "running" and task.worker_id == "w" and task.spare_attempt == 0
