"""Placing without sorting the queue (`dtf.core.scheduling.placing`), checked against the
plain algorithm it replaces: sort every queued task, give each in turn to the best capable
worker.  Same assignments, for any queue and fleet; and the work of a round does not grow
with the queue."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec.structs import replace

from dtf.core import decisions
from dtf.core.scheduling import Assignment, index_of, schedule, strategy
from dtf.core.scheduling.protocol import Strategy, WorkerSlots, capable, free_workers
from dtf.core.state import TaskState, View
from events.catalogue import (
    Capabilities,
    Gpu,
    Requirements,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    WorkerQuarantined,
    WorkerRegistered,
)

KINDS = (
    Capabilities("linux", "cpu", 8, 32.0, labels=("ci",)),
    Capabilities("linux", "big", 64, 256.0),
    Capabilities("darwin", "mac", 8, 16.0),
    Capabilities("linux", "gpu", 32, 128.0, gpus=(Gpu("nvidia", "H100", 80.0),)),
)
NEEDS = (
    Requirements(),
    Requirements(platform="linux"),
    Requirements(labels=("ci",)),
    Requirements(gpus=1),
    Requirements(platform="darwin"),
    Requirements(gpus=2),  # nobody has two
)
STRATEGIES = ("least-loaded", "duration")


def reference(chooser: Strategy, queued: list[TaskState], workers: list[WorkerSlots]):
    """The plain algorithm: every task in order, each to the best-ranked capable worker."""
    made = []
    for task in sorted(queued, key=chooser.order):
        candidates = capable(task, workers)
        if not candidates:
            continue
        best = min(candidates, key=chooser.rank)
        best.free -= 1
        chooser.took(best, task)
        made.append(Assignment(task.task_id, best.worker_id))
    return made


def fleet(view: View, kinds: list[tuple[int, int]], seq: int = 0) -> int:
    for i, (kind, slots) in enumerate(kinds):
        seq += 1
        registered = WorkerRegistered(
            id=f"w{i}", at=0.0, actor="t", worker_id=f"w{i}", capabilities=KINDS[kind], slots=slots
        )
        view.apply(registered, seq)
    return seq


def queued(task_id: str, need: int, priority: int, expected: float) -> TaskQueued:
    return TaskQueued(
        id=f"q-{task_id}",
        at=1.0,
        actor="t",
        task_id=task_id,
        run_id=task_id.split(".")[0],
        kind="pytest",
        requirements=NEEDS[need],
        priority=priority,
        expected_duration=expected,
    )


tasks_st = st.lists(
    st.tuples(
        st.integers(0, len(NEEDS) - 1),  # requirements
        st.integers(0, 2),  # priority
        st.sampled_from([0.0, 0.5, 1.0, 3.0]),  # expected duration
        st.sets(st.integers(0, 5), max_size=3),  # workers a retry avoids
        st.sampled_from([0.0, 0.0, 32.0]),  # memory a retry needs
    ),
    max_size=40,
)
fleet_st = st.lists(st.tuples(st.integers(0, len(KINDS) - 1), st.integers(1, 3)), max_size=6)


@settings(max_examples=200, deadline=None)
@given(tasks=tasks_st, kinds=fleet_st, name=st.sampled_from(STRATEGIES))
def test_the_same_assignments_as_sorting_everything(tasks, kinds, name):
    view = View()
    seq = fleet(view, kinds)
    for n, (need, priority, expected, _, _) in enumerate(tasks):
        seq += 1
        view.apply(queued(f"r.{n}", need, priority, expected), seq)
    states = [
        replace(view.tasks[f"r.{n}"], avoid=tuple(f"w{a}" for a in sorted(avoid)), min_memory_gb=m)
        for n, (_, _, _, avoid, m) in enumerate(tasks)
    ]
    expected = reference(strategy(name), states, free_workers(view))
    assert schedule(strategy(name), states, free_workers(view)) == expected


def index_agrees(view: View, name: str, now: float) -> list[Assignment]:
    chooser = strategy(name)
    ready = [t for t in view.queued() if t.not_before <= now]
    plain = schedule(chooser, ready, free_workers(view))
    indexed = index_of(view, chooser).place(chooser, view, now, free_workers(view))
    assert indexed == plain
    return indexed


@settings(max_examples=100, deadline=None)
@given(
    kinds=fleet_st,
    moves=st.lists(st.tuples(st.sampled_from("qaqfcxk"), st.integers(0, 10**6)), max_size=60),
    name=st.sampled_from(STRATEGIES),
)
def test_the_index_follows_the_queue_through_every_kind_of_event(kinds, moves, name):
    """Tasks queued, assigned, completed, failed and retried elsewhere, cancelled; workers
    quarantined: the View's index places exactly what a full sort of its queue would."""
    view = View()
    seq = fleet(view, kinds)
    index_of(view, strategy(name))  # made early: it must follow every event from here
    n = 0
    now = 10.0

    def apply(event) -> None:
        nonlocal seq
        seq += 1
        view.apply(event, seq)

    for move, pick in moves:
        now += 1
        live = sorted(t for ids in view.active.values() for t in ids)
        if move == "q":
            apply(replace(queued(f"r.{n}", pick % len(NEEDS), pick % 3, pick % 4), id=f"q{n}"))
            n += 1
        elif move == "a":
            stamp = decisions.Stamp(now, "c", 1, lambda: f"id{seq}", random.random)
            for event in decisions.assignments(view, stamp, strategy(name)):
                apply(event)
        elif move in "fc" and live:
            task = view.tasks[live[pick % len(live)]]
            common = {"id": f"e{seq}", "at": now, "actor": task.worker_id}
            if move == "c":
                apply(TaskCompleted(task_id=task.task_id, worker_id=task.worker_id, **common))
            else:
                apply(
                    TaskFailed(
                        task_id=task.task_id,
                        worker_id=task.worker_id,
                        attempt=task.attempt,
                        category="timeout",
                        **common,
                    )
                )
                if view.tasks[task.task_id].status == "retrying":
                    apply(
                        TaskRetryScheduled(
                            task_id=task.task_id,
                            attempt=task.attempt,
                            avoid=(task.worker_id,),
                            not_before=now + (pick % 3),
                            **common,
                        )
                    )
        elif move == "x" and view.queued_ids:
            ids = list(view.queued_ids)
            apply(TaskCancelled(id=f"e{seq}", at=now, actor="c", task_id=ids[pick % len(ids)]))
        elif move == "k" and kinds:
            worker_id = f"w{pick % len(kinds)}"
            apply(WorkerQuarantined(id=f"e{seq}", at=now, actor="c", worker_id=worker_id))
        index_agrees(view, name, now)


def test_a_round_reads_a_few_tasks_however_long_the_queue():
    """One slot comes free in a queue of 20,000: the round reads a handful of entries, not
    the queue (the benchmark, bench/scale.py, shows the time; this counts the work)."""
    reads = 0

    class Counting:
        def __init__(self, inner: Strategy) -> None:
            self.inner = inner
            self.name = inner.name

        def order(self, task):
            nonlocal reads
            reads += 1
            return self.inner.order(task)

        def rank(self, worker):
            return self.inner.rank(worker)

        def took(self, worker, task):
            self.inner.took(worker, task)

    for name in STRATEGIES:
        view = View()
        seq = fleet(view, [(0, 1), (1, 1), (3, 1)])
        counting = Counting(strategy(name))
        for i in range(20_000):
            seq += 1
            view.apply(queued(f"r.{i}", i % 4, 0, float(i % 5)), seq)
        stamp = decisions.Stamp(5.0, "c", 1, lambda: "id", random.random)
        first = decisions.assignments(view, stamp, counting)
        assert len(first) == 3
        for event in first:
            seq += 1
            view.apply(event, seq)
        seq += 1
        done = first[0]
        view.apply(
            TaskCompleted(
                id="done", at=6.0, actor="w", task_id=done.task_id, worker_id=done.worker_id
            ),
            seq,
        )
        reads = 0
        [again] = decisions.assignments(view, stamp, counting)
        assert again.worker_id == done.worker_id
        assert reads <= 20, reads


def test_placements_of_finished_work_do_not_pile_up():
    view = View()
    seq = fleet(view, [(0, 1)])
    chooser = strategy("duration")
    index = index_of(view, chooser)
    for i in range(50):  # pinned to workers long gone, as health checks are: 50 placements
        seq += 1
        view.apply(replace(queued(f"r.{i}", 0, 0, 1.0), id=f"q{i}", pinned=f"gone-{i}"), seq)
    assert len(index.heaps) == 50
    for i in range(50):
        seq += 1
        view.apply(TaskCancelled(id=f"c{i}", at=2.0, actor="c", task_id=f"r.{i}"), seq)
    assert index.place(chooser, view, 3.0, free_workers(view)) == []
    assert index.heaps == {}
