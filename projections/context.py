"""The fold the projections share: each aggregate's state as the stream has left it.

`Context` advances tasks, workers and runs with the core's own `evolve_*` functions (so the
read models accept exactly what the coordinator's View accepts) and hands each event to the
projections as a `Folded` with the entries it met.  It keeps in memory every worker, every run
and the tasks that are not terminal; a terminal task never changes again (`evolve_task` ignores
everything after a terminal state), so it is dropped once its batch is written and only its id
is kept.

On restart the context is loaded from the tables: runs and workers from `runs`/`workers`
(the columns hold everything their evolve functions read), live tasks from `projector_tasks`,
where each is stored exactly (its `TaskState` holds fields no table has, such as retry limits).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

import duckdb
import msgspec

from dtf.core.state import (
    TERMINAL,
    RunState,
    TaskState,
    WorkerState,
    evolve_run,
    evolve_task,
    evolve_worker,
)
from events.catalogue import (
    AnyEvent,
    Capabilities,
    OfTask,
    OfWorker,
    RunEvent,
    RunFinished,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskEvent,
    TaskFailed,
    TaskQueued,
    TaskStarted,
    WorkerEvent,
    WorkerRegistered,
)
from events.subjects import run_of
from projections.projection import Batch, Folded
from projections.tables.workers import hardware_class

IN_PROGRESS = ("assigned", "running")
# Task events that name a worker (not TaskQueued, TaskCancelled, TaskRetryScheduled, ...).
_NAMES_WORKER = {c for c in AnyEvent.__args__ if "worker_id" in c.__struct_fields__}


class TaskEntry(msgspec.Struct, frozen=True):
    """A task's state plus what its current attempt's row needs besides it."""

    state: TaskState
    case_count: int
    term: int = 0  # lease term of the assignment that began the current attempt
    attempt_started: float | None = None  # TaskStarted of the current attempt
    outcome: str | None = None  # how the current attempt ended, once it has

    @property
    def task_id(self) -> str:
        return self.state.spec.task_id

    @property
    def run_id(self) -> str:
        return self.state.spec.run_id


class WorkerEntry(msgspec.Struct, frozen=True):
    """A worker's state plus its capabilities flattened into the `workers` columns."""

    state: WorkerState
    hostname: str
    platform: str
    cpus: int
    memory_gb: float
    gpus: int
    gpu_names: str
    labels: str
    hardware: str
    registered_at: float
    changed_at: float

    @classmethod
    def registered(cls, state: WorkerState, event: WorkerRegistered) -> WorkerEntry:
        caps = event.capabilities
        return cls(
            state,
            hostname=caps.hostname,
            platform=caps.platform,
            cpus=caps.cpus,
            memory_gb=caps.memory_gb,
            gpus=len(caps.gpus),
            gpu_names=",".join(g.name or g.vendor for g in caps.gpus),
            labels=",".join(caps.labels),
            hardware=hardware_class(caps),
            registered_at=event.at,
            changed_at=event.at,
        )


class RunEntry(msgspec.Struct, frozen=True):
    """A run's state (its submission without the task list) and its git labels."""

    state: RunState
    task_count: int

    @property
    def labels(self) -> dict[str, str]:
        return self.state.submitted.labels

    @property
    def commit(self) -> str | None:
        return self.state.submitted.labels.get("commit")

    @property
    def branch(self) -> str | None:
        return self.state.submitted.labels.get("branch")


def _advance(entry: TaskEntry, event: AnyEvent, state: TaskState) -> TaskEntry:
    """The entry after an event the task accepted."""
    match event:
        case TaskAssigned():
            return TaskEntry(state, entry.case_count, event.term)
        case TaskStarted():
            return msgspec.structs.replace(entry, state=state, attempt_started=event.at)
        case TaskCompleted():
            return msgspec.structs.replace(entry, state=state, outcome=event.outcome)
        case TaskFailed():
            return msgspec.structs.replace(entry, state=state, outcome="error")
        case TaskCancelled() if entry.outcome is None and entry.state.status in IN_PROGRESS:
            return msgspec.structs.replace(entry, state=state, outcome="cancelled")
    return msgspec.structs.replace(entry, state=state)


class Context:
    """Owns the in-memory aggregates: live tasks, all workers, all runs; and the count of
    events that changed nothing."""

    def __init__(self) -> None:
        self._encoder = msgspec.json.Encoder()
        self.ignored = 0  # events committed that changed nothing
        self._reset()

    def _reset(self) -> None:
        self.tasks: dict[str, TaskEntry] = {}
        # Ids of terminal tasks: all their state is in the tables and no event changes it,
        # but a second TaskQueued for one must still be told apart from a new task.
        self.settled: set[str] = set()
        self.workers: dict[str, WorkerEntry] = {}
        self.runs: dict[str, RunEntry] = {}
        self._stored: set[str] = set()  # live tasks present in projector_tasks
        self._ignored = 0  # in the batch being applied

    # --- folding ------------------------------------------------------------------------

    def fold(self, records: Sequence[tuple[int, str, AnyEvent]]) -> Batch:
        """Advance the aggregates through (seq, subject, event) records, in stream order; one
        Folded per record."""
        out: list[Folded] = []
        append = out.append
        for seq, subject, event in records:
            if isinstance(event, OfTask):
                folded = self._task(seq, subject, event)
            elif isinstance(event, OfWorker):
                folded = self._worker(seq, subject, event)
            else:
                folded = self._run(seq, subject, event)
            if not folded.accepted:
                self._ignored += 1
            append(folded)
        return Batch(out)

    def _task(self, seq: int, subject: str, event: TaskEvent) -> Folded:
        task_id = event.task_id
        entry = self.tasks.get(task_id)
        if entry is None and task_id in self.settled:
            # evolve_task ignores every event after a terminal state.
            return Folded(seq, subject, event, False, None, None, self.runs.get(run_of(task_id)))
        before = entry.state if entry is not None else None
        after = evolve_task(before, event, seq)
        accepted = after is not None and after is not before
        if accepted:
            assert after is not None
            if entry is None:
                assert isinstance(event, TaskQueued)
                count = 1 if event.kind == "command" else len(event.nodeids)
                entry = TaskEntry(after, count)
            else:
                entry = _advance(entry, event, after)
            self.tasks[task_id] = entry
        worker_id = event.worker_id if type(event) in _NAMES_WORKER else ""  # type: ignore[union-attr]
        if not worker_id and entry is not None:
            worker_id = entry.state.worker_id
        run_id = entry.run_id if entry is not None else run_of(task_id)
        return Folded(
            seq,
            subject,
            event,
            accepted,
            entry,
            self.workers.get(worker_id),
            self.runs.get(run_id),
        )

    def _worker(self, seq: int, subject: str, event: WorkerEvent) -> Folded:
        worker_id = event.worker_id
        entry = self.workers.get(worker_id)
        before = entry.state if entry is not None else None
        after = evolve_worker(before, event)
        accepted = after is not None and after is not before
        if accepted:
            assert after is not None
            if isinstance(event, WorkerRegistered):
                entry = WorkerEntry.registered(after, event)
            else:
                assert entry is not None
                entry = msgspec.structs.replace(entry, state=after, changed_at=event.at)
            self.workers[worker_id] = entry
        return Folded(seq, subject, event, accepted, None, entry, None)

    def _run(self, seq: int, subject: str, event: RunEvent) -> Folded:
        run_id = event.run_id
        entry = self.runs.get(run_id)
        before = entry.state if entry is not None else None
        after = evolve_run(before, event)
        accepted = after is not None and after is not before
        if accepted:
            assert after is not None
            if isinstance(event, RunSubmitted):
                # The task list and precollected results are not kept: no row needs them.
                compact = msgspec.structs.replace(event, task_ids=(), precollected=())
                entry = RunEntry(RunState(compact), len(event.task_ids))
            else:
                assert entry is not None
                entry = msgspec.structs.replace(entry, state=after)
            self.runs[run_id] = entry
        return Folded(seq, subject, event, accepted, None, None, entry)

    # --- persistence --------------------------------------------------------------------

    def write(self, batch: Batch, con: duckdb.DuckDBPyConnection) -> None:
        """Store the live tasks the batch touched in projector_tasks; forget finished ones."""
        touched = {f.task.task_id: f.task for f in batch.accepted("task") if f.task is not None}
        live = [(t, e) for t, e in touched.items() if not e.state.terminal]
        gone = [t for t, e in touched.items() if e.state.terminal and t in self._stored]
        if gone:
            con.execute("DELETE FROM projector_tasks WHERE task_id IN (SELECT unnest($1))", [gone])
        if live:
            ids = [t for t, _ in live]
            entries = [self._encoder.encode(e).decode() for _, e in live]
            con.execute(
                "INSERT OR REPLACE INTO projector_tasks SELECT unnest($1), unnest($2)",
                [ids, entries],
            )

    def settle(self) -> None:
        """After the batch is committed: drop terminal tasks from memory."""
        for task_id in [t for t, e in self.tasks.items() if e.state.terminal]:
            del self.tasks[task_id]
            self._stored.discard(task_id)
            self.settled.add(task_id)
        self._stored.update(self.tasks)
        self.ignored += self._ignored
        self._ignored = 0

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Replace the in-memory state with what the committed tables hold."""
        self._reset()
        decoder = msgspec.json.Decoder(TaskEntry)
        for task_id, entry in con.execute("SELECT task_id, entry FROM projector_tasks").fetchall():
            self.tasks[task_id] = decoder.decode(entry)
        self._stored = set(self.tasks)
        self.settled = {
            row[0]
            for row in con.execute(
                "SELECT task_id FROM tasks WHERE status IN (SELECT unnest($1))", [sorted(TERMINAL)]
            ).fetchall()
        }
        for row in con.execute(
            "SELECT worker_id, hostname, platform, cpus, memory_gb, gpus, gpu_names, labels,"
            " hardware, slots, status, registered_at, changed_at, reason FROM workers"
        ).fetchall():
            self.workers[row[0]] = _worker_from_row(row)
        for row in con.execute(
            "SELECT run_id, submitted_at, actor, bundle, root, labels, task_count, total_cases,"
            " finished_at, cancelled, counts FROM runs"
        ).fetchall():
            self.runs[row[0]] = _run_from_row(row)


def _worker_from_row(row: tuple) -> WorkerEntry:
    wid, host, plat, cpus, mem, gpus, gpu_names, labels, hw, slots, status, reg, changed = row[:13]
    reason = row[13]
    caps = Capabilities(plat, host, cpus, mem, labels=tuple(labels.split(",")) if labels else ())
    registered = WorkerRegistered(
        id="", at=reg, actor="", worker_id=wid, capabilities=caps, slots=slots
    )
    state = WorkerState(wid, registered, status, reason or "")
    return WorkerEntry(state, host, plat, cpus, mem, gpus, gpu_names, labels, hw, reg, changed)


def _run_from_row(row: tuple) -> RunEntry:
    run_id, at, actor, bundle, root, labels, task_count, total, fin_at, cancelled, counts = row
    submitted = RunSubmitted(
        id="",
        at=at,
        actor=actor,
        run_id=run_id,
        bundle=bundle,
        root=root,
        total_cases=total,
        labels=json.loads(labels) if labels else {},
    )
    finished = None
    if fin_at is not None:
        finished = RunFinished(
            id="",
            at=fin_at,
            actor="",
            run_id=run_id,
            counts=json.loads(counts) if counts else {},
            cancelled=bool(cancelled),
        )
    return RunEntry(RunState(submitted, finished=finished), task_count)
