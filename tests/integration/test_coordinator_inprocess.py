"""The real Coordinator on a MemoryStore, in the test's event loop: no server, no processes.

tests/unit/test_decisions.py tests the rules with values; this tests the shell around them:
replay, follow, decide while holding the lease, write with the aggregate's guard, and the
heartbeat reckoning, on a clock the test moves (`ManualClock`, given to both the coordinator
and the store).  The test plays the client (RunSubmitted, TaskQueued) and the workers
(registration, heartbeats, TaskStarted and results, each write guarded like the real worker's)
and asserts on what the coordinator appends.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec
import pytest

from dtf.coordinator.service import Coordinator
from dtf.core import snapshot
from dtf.core.scheduling import strategy
from dtf.core.state import View
from dtf.nats.memory import MemoryStore
from events.api import PLAN_SUBJECT, Heartbeat, PlanReply, PlanRequest
from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    Gpu,
    Requirements,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskStarted,
    WorkerLost,
    WorkerRegistered,
    WorkerStopped,
)
from events.records import Recorded, Stored
from events.subjects import assignments_for
from tests.support.clock import ManualClock
from tests.support.polling import eventually_async
from tests.support.views import view_state

CAPS = Capabilities(platform="linux", hostname="cpu-box", cpus=4, memory_gb=16)
GPU_CAPS = Capabilities(
    platform="linux", hostname="gpu-box", cpus=8, memory_gb=64, gpus=(Gpu("nvidia", "H200", 141),)
)
# Seconds on the test's clock.  The heartbeat loop also polls every LOST_AFTER / 4 seconds of
# real time, which is how long a coordinator takes to notice `stop`: kept short on purpose.
LOST_AFTER = 0.4
BEAT_STEP = 0.15  # the clock's step between heartbeats: under LOST_AFTER, or all are "blind"
# Long enough that no step of the clock in a test lapses the leader's lease.
LEASE_TTL = 60.0
WAIT_S = 5.0  # a deadline for what follows at once, never a measurement

Behaviour = Literal["complete", "fail", "hang"]


class FixedDraws(random.Random):
    """Every random draw is 0.1: a first retry backs off 0.05 s on the test's clock."""

    def random(self) -> float:
        return 0.1


def nodeid(task_id: str) -> str:
    return f"tests/test_{task_id.replace('.', '_')}.py::test"


class Fleet:
    """Owns the store, its clock, every record read back from it, and the coordinators and
    workers the test started on it (stopped at teardown)."""

    def __init__(self) -> None:
        self.clock = ManualClock()
        self.store = MemoryStore(clock=self.clock, heartbeat_ttl=LOST_AFTER)
        self.seen: list[Stored] = []
        self.stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._subs: list[Any] = []

    async def open(self) -> None:
        self._subs.append(await self.store.follow("dtf.evt.>", self.seen.append))

    async def close(self) -> None:
        self.stop.set()
        if self._tasks:
            await asyncio.wait_for(asyncio.gather(*self._tasks), WAIT_S)  # raises what they did
        for sub in self._subs:
            await sub.stop()
        await self.store.close()

    def event(self, cls: type, actor: str, **fields: object) -> Any:
        return cls(id=uuid.uuid4().hex, at=self.clock(), actor=actor, **fields)

    def events(self, cls: type, **fields: object) -> list[Any]:
        """The recorded events of `cls` whose fields have the given values, in stream order."""
        return [
            r.event
            for r in self.seen
            if isinstance(r, Recorded)
            and isinstance(r.event, cls)
            and all(getattr(r.event, k) == v for k, v in fields.items())
        ]

    async def until(self, cls: type, **fields: object) -> Any:
        """The first recorded event of `cls` with those fields, once there is one."""
        found = await eventually_async(lambda: self.events(cls, **fields), timeout=WAIT_S)
        return found[0]

    async def coordinator(self, coordinator_id: str, **options: Any) -> Coordinator:
        """A coordinator running on the store, on the test's clock, until teardown."""
        c = Coordinator(
            self.store,
            strategy("duration"),
            coordinator_id=coordinator_id,
            lost_after=LOST_AFTER,
            lease_ttl=LEASE_TTL,
            clock=self.clock,
            monotonic=self.clock,
            rng=FixedDraws(),
            **options,
        )
        self._tasks.append(asyncio.create_task(c.run(self.stop)))
        await eventually_async(lambda: c.lease is not None, timeout=WAIT_S)  # replayed
        return c

    async def worker(
        self, worker_id: str, caps: Capabilities = CAPS, behaviour: Behaviour = "complete"
    ) -> SimWorker:
        w = SimWorker(self, worker_id, caps, behaviour)
        self._subs.append(await self.store.follow(assignments_for(worker_id), w.on_assignment))
        await self.store.append(
            self.event(WorkerRegistered, worker_id, worker_id=worker_id, capabilities=caps)
        )
        await w.beat()
        return w

    async def submit(self, run_id: str, *requirements: Requirements) -> list[str]:
        """A run of one task per `requirements`, as `dtf run` submits it."""
        task_ids = [f"{run_id}.{n}" for n in range(len(requirements))]
        submitted = self.event(RunSubmitted, "client", run_id=run_id, task_ids=tuple(task_ids))
        await self.store.append(submitted, expected_last_seq=0)
        for task_id, needs in zip(task_ids, requirements, strict=True):
            queued = self.event(
                TaskQueued,
                "client",
                task_id=task_id,
                run_id=run_id,
                kind="pytest",
                nodeids=(nodeid(task_id),),
                requirements=needs,
            )
            await self.store.append(queued)
        return task_ids

    def by_coordinators(self) -> list[AnyEvent]:
        return [r.event for r in self.seen if isinstance(r, Recorded) and "coord" in r.event.actor]


class SimWorker:
    """A worker as the coordinator sees one: it registers, beats, and answers each of its
    assignments with a guarded TaskStarted and then, by `behaviour`, a passing result, an
    infrastructure failure, or nothing more (a hang)."""

    def __init__(
        self, fleet: Fleet, worker_id: str, caps: Capabilities, behaviour: Behaviour
    ) -> None:
        self.fleet = fleet
        self.id = worker_id
        self.caps = caps
        self.behaviour = behaviour

    async def beat(self) -> None:
        await self.fleet.store.beat(self.id, msgspec.json.encode(Heartbeat(self.fleet.clock())))

    async def on_assignment(self, rec: Stored) -> None:
        """Runs for each message on this worker's assignment subject."""
        if not isinstance(rec, Recorded) or not isinstance(rec.event, TaskAssigned):
            return
        task_id, attempt, store = rec.event.task_id, rec.event.attempt, self.fleet.store
        mine = {"task_id": task_id, "worker_id": self.id, "attempt": attempt}
        started = await store.append(
            self.fleet.event(TaskStarted, self.id, **mine), expected_last_seq=rec.seq
        )
        result: AnyEvent
        if self.behaviour == "hang":
            return
        if self.behaviour == "fail":
            result = self.fleet.event(
                TaskFailed,
                self.id,
                **mine,
                category="infrastructure",
                message="pytest process was killed by signal SIGSEGV",
            )
        else:
            case = CaseResult(nodeid(task_id), "passed", duration=0.5)
            result = self.fleet.event(TaskCompleted, self.id, **mine, cases=(case,))
        await store.append(result, expected_last_seq=started)


@pytest.fixture
async def fleet() -> AsyncIterator[Fleet]:
    f = Fleet()
    await f.open()
    yield f
    await f.close()


def saw_beat(coordinator: Coordinator, worker_id: str, at: float) -> Callable[[], bool]:
    return lambda: coordinator.last_beat.get(worker_id) == at


async def beat_until(
    fleet: Fleet, coordinator: Coordinator, worker: SimWorker, done: Callable[[], object]
) -> None:
    """Move the clock in steps, `worker` beating at each and the coordinator seeing each
    beat before the next step, until `done()`: the other workers fall silent meanwhile."""
    for _ in range(40):
        if done():
            return
        now = fleet.clock.advance(BEAT_STEP)
        await worker.beat()
        await eventually_async(saw_beat(coordinator, worker.id, now), timeout=WAIT_S)
    raise AssertionError("the clock ran 40 heartbeats on and it did not happen")


async def test_replays_then_assigns_to_a_live_worker_that_meets_the_requirements(
    fleet: Fleet,
) -> None:
    """Started on a log that has it all, the leader places the GPU task on the one active GPU
    worker; a stopped GPU worker and a CPU-only one get nothing, nor does an impossible task."""
    await fleet.worker("cpu", behaviour="hang")
    await fleet.worker("gpu-old", GPU_CAPS, behaviour="hang")
    await fleet.store.append(fleet.event(WorkerStopped, "gpu-old", worker_id="gpu-old"))
    await fleet.worker("gpu", GPU_CAPS, behaviour="hang")
    gpu_task, fpga_task = await fleet.submit(
        "r", Requirements(gpus=1), Requirements(labels=("fpga",))
    )
    c = await fleet.coordinator("coord-1")
    assigned = await fleet.until(TaskAssigned, task_id=gpu_task)
    assert (assigned.worker_id, assigned.attempt) == ("gpu", 1)
    assert (assigned.actor, assigned.term) == ("coord-1", c.term) and c.term > 0
    await fleet.until(TaskStarted, task_id=gpu_task)  # the worker's guard took the assignment
    assert fleet.events(TaskAssigned) == [assigned]
    assert c.view.tasks[fpga_task].status == "queued"


async def test_an_infrastructure_failure_is_retried_elsewhere_after_its_backoff(
    fleet: Fleet,
) -> None:
    c = await fleet.coordinator("coord-1")
    await fleet.worker("flaky", behaviour="fail")
    [task] = await fleet.submit("r", Requirements())
    await fleet.until(TaskFailed, task_id=task, worker_id="flaky")
    retry = await fleet.until(TaskRetryScheduled, task_id=task)
    assert (retry.attempt, retry.avoid, retry.term) == (1, ("flaky",), c.term)
    assert retry.reason.startswith("infrastructure") and retry.not_before > fleet.clock()
    await fleet.worker("steady")
    fleet.clock.advance(retry.not_before - fleet.clock())  # the backoff is over
    again = await fleet.until(TaskAssigned, task_id=task, attempt=2)
    assert again.worker_id == "steady" and again.at >= retry.not_before
    finished = await fleet.until(RunFinished, run_id="r")
    assert finished.counts == {"passed": 1}


async def test_a_silent_worker_is_lost_and_its_task_runs_elsewhere(fleet: Fleet) -> None:
    c = await fleet.coordinator("coord-1")
    await fleet.worker("silent", behaviour="hang")
    [task] = await fleet.submit("r", Requirements())
    await fleet.until(TaskStarted, task_id=task, worker_id="silent")
    survivor = await fleet.worker("survivor")
    # "silent" never beats again: its key would expire in the bucket, and the coordinator's
    # clock for it runs out, while "survivor" keeps beating (silence of everyone says nothing).
    await beat_until(fleet, c, survivor, lambda: fleet.events(WorkerLost))
    [lost] = fleet.events(WorkerLost)
    assert (lost.worker_id, lost.actor, lost.term) == ("silent", "coord-1", c.term)
    failed = await fleet.until(TaskFailed, task_id=task, worker_id="silent")
    assert (failed.category, failed.actor, failed.attempt) == ("infrastructure", "coord-1", 1)
    await beat_until(fleet, c, survivor, lambda: fleet.events(RunFinished))
    again = await fleet.until(TaskAssigned, task_id=task, attempt=2)
    assert again.worker_id == "survivor"
    assert fleet.events(RunFinished)[0].counts == {"passed": 1}
    assert "silent" not in await fleet.store.live_workers()


async def test_a_run_finishes_when_every_task_is_terminal(fleet: Fleet) -> None:
    c = await fleet.coordinator("coord-1")
    await fleet.worker("w1")
    await fleet.worker("w2")
    tasks = await fleet.submit("r", Requirements(), Requirements(), Requirements())
    finished = await fleet.until(RunFinished, run_id="r")
    assert finished.counts == {"passed": 3} and not finished.cancelled
    assert (finished.actor, finished.term) == ("coord-1", c.term)
    assert sorted(e.task_id for e in fleet.events(TaskCompleted)) == tasks
    assert sorted(e.task_id for e in fleet.events(TaskAssigned)) == tasks  # each exactly once
    assert len(fleet.events(RunFinished)) == 1


async def test_the_plan_is_answered_from_the_view(fleet: Fleet) -> None:
    await fleet.coordinator("coord-1")
    await fleet.worker("w1")
    [task] = await fleet.submit("r", Requirements())
    await fleet.until(RunFinished, run_id="r")
    asked = PlanRequest([nodeid(task), "tests/test_new.py::test"])
    data = await fleet.store.request(PLAN_SUBJECT, msgspec.json.encode(asked), timeout=WAIT_S)
    reply = msgspec.json.decode(data, type=PlanReply)
    assert reply == PlanReply({nodeid(task): 0.5}, slots=1, workers=1)
    garbage = await fleet.store.request(PLAN_SUBJECT, b"\xff", timeout=WAIT_S)
    assert msgspec.json.decode(garbage, type=PlanReply).durations == {}


async def test_the_plan_names_requirements_no_worker_ever_offered(fleet: Fleet) -> None:
    c = await fleet.coordinator("coord-1")
    amd = Requirements(gpu_vendor="amd")
    avx = Requirements(cpu_flags=("avx512f",))

    async def ask(*wanted: Requirements) -> list[Requirements]:
        data = msgspec.json.encode(PlanRequest([], list(wanted)))
        answer = await fleet.store.request(PLAN_SUBJECT, data, timeout=WAIT_S)
        return msgspec.json.decode(answer, type=PlanReply).never_offered

    assert await ask(amd) == []  # no worker yet: nothing is known, nothing refused
    await fleet.worker("w1", msgspec.structs.replace(CAPS, cpu_flags=("avx2", "avx512f")))
    await eventually_async(lambda: "w1" in c.view.workers, timeout=WAIT_S)
    assert await ask(amd, avx, Requirements()) == [amd]


async def test_a_second_coordinator_without_the_lease_follows_and_writes_nothing(
    fleet: Fleet,
) -> None:
    leader = await fleet.coordinator("coord-1")
    await eventually_async(lambda: leader.term > 0, timeout=WAIT_S)
    follower = await fleet.coordinator("coord-2")
    await fleet.worker("w1")
    await fleet.worker("w2")
    await fleet.submit("r", Requirements(), Requirements())
    await fleet.until(RunFinished, run_id="r")
    # It saw the whole run (hot, ready to take over) and decided none of it.
    await eventually_async(lambda: follower.view.runs["r"].finished is not None, timeout=WAIT_S)
    assert {e.actor for e in fleet.by_coordinators()} == {"coord-1"}
    assert follower.term == 0 and follower.lease is not None and not follower.lease.leading


async def test_a_coordinator_starts_from_the_snapshot_and_folds_only_the_tail(
    fleet: Fleet,
) -> None:
    """The leader snapshots its View; a coordinator started later loads it, folds the rest,
    and holds exactly what a fold of the whole stream holds."""
    first = await fleet.coordinator("coord-1", snapshot_every=5, snapshot_interval=0)
    await fleet.worker("cpu")
    await fleet.submit("r", *[Requirements()] * 4)
    await fleet.until(RunFinished, run_id="r")
    await eventually_async(lambda: first.snapshot_seq > 0, timeout=WAIT_S)
    await fleet.submit("s", Requirements())  # after the snapshot: the tail
    await fleet.until(RunFinished, run_id="s")

    second = await fleet.coordinator("coord-2", snapshot_every=0)
    thawed = snapshot.thaw(fleet.store.snapshot or b"")
    assert thawed is not None and second.snapshot_seq == thawed[1] > 0
    whole = View(forget_finished=True)  # as a coordinator folds
    for rec in fleet.seen:
        whole.fold(rec)
    await eventually_async(lambda: second.view.last_seq == whole.last_seq, timeout=WAIT_S)
    assert view_state(second.view) == view_state(whole)


@pytest.mark.parametrize("kind", ["torn", "ahead of the stream"])
async def test_a_snapshot_that_cannot_be_trusted_is_ignored(fleet: Fleet, kind: str) -> None:
    await fleet.worker("cpu")
    ahead = View()
    ahead.last_seq = 10**6
    fleet.store.snapshot = b"dtf-view\x78garbage" if kind == "torn" else snapshot.freeze(ahead)
    c = await fleet.coordinator("coord-1", snapshot_every=0)
    assert c.snapshot_seq == 0  # replayed from the start instead
    [task] = await fleet.submit("r", Requirements())
    await fleet.until(TaskCompleted, task_id=task)
    assert "cpu" in c.view.workers
