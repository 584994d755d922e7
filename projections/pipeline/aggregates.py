"""The fold the projections share: each aggregate's state as the stream has left it.

`Aggregates` advances tasks, workers and runs with the core's own `evolve_*` functions (so the
read models accept exactly what the coordinator's View accepts) and hands each event to the
projections as a `Folded` with the entries it met.  It keeps in memory every worker, every run
and the tasks that are not terminal; a terminal task never changes again (`evolve_task` ignores
everything after a terminal state), so it is dropped once its batch is written and only its id
is kept.

On restart the aggregates are loaded from the tables: runs and workers from `runs`/`workers`
(the columns hold everything their evolve functions read), live tasks from `projector_tasks`,
where each is stored exactly (its `TaskState` holds fields no table has, such as retry limits).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import msgspec

from dtf.core.state import (
    RunState,
    TaskState,
    evolve_run,
    evolve_task,
    evolve_worker,
    refusal,
)
from events.catalogue import (
    AnyEvent,
    OfTask,
    OfWorker,
    RunEvent,
    RunSubmitted,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskStarted,
    WorkerEvent,
    WorkerRegistered,
)
from events.records import Signer
from events.subjects import run_of
from projections.pipeline.entries import RunEntry, TaskEntry, WorkerEntry
from projections.pipeline.folded import Batch, Folded
from projections.pipeline.writes import Writes

IN_PROGRESS = ("assigned", "running")
# (stream sequence, subject, event, verified signer or None) as the projector hands them in.
Record = tuple[int, str, AnyEvent, Signer | None]
# Task events that name a worker (not TaskQueued, TaskCancelled, TaskRetryScheduled, ...).
_NAMES_WORKER = {c for c in AnyEvent.__args__ if "worker_id" in c.__struct_fields__}
_TASK_EVENTS = {c for c in AnyEvent.__args__ if issubclass(c, OfTask)}
_WORKER_EVENTS = {c for c in AnyEvent.__args__ if issubclass(c, OfWorker)}


def _advance(entry: TaskEntry, event: AnyEvent, state: TaskState) -> tuple[TaskEntry, bool]:
    """The entry after an event the task accepted, and whether the event began, advanced or
    ended its current attempt (the entry's attempt fields, the row of `attempts`)."""
    match event:
        case TaskAssigned():
            return TaskEntry(state, entry.case_count, event.term), True
        case TaskStarted():
            return msgspec.structs.replace(entry, state=state, attempt_started=event.at), True
        case TaskCompleted():
            return msgspec.structs.replace(entry, state=state, outcome=event.outcome), True
        case TaskFailed():
            return msgspec.structs.replace(entry, state=state, outcome="error"), True
        case TaskCancelled() if entry.outcome is None and entry.state.status in IN_PROGRESS:
            return msgspec.structs.replace(entry, state=state, outcome="cancelled"), True
    return msgspec.structs.replace(entry, state=state), False


class Aggregates:
    """Owns the in-memory aggregates: live tasks, all workers, all runs.

    `deferred` (a rebuild's: nothing reads its file before it is complete) keeps the live
    tasks out of `projector_tasks` until `store_live`; meanwhile `committed` holds them as of
    the last batch committed, which is what `load` then restores them from."""

    def __init__(self, *, deferred: bool = False) -> None:
        self._encoder = msgspec.json.Encoder()
        self.refused: list[tuple[int, str, str]] = []  # of the last fold
        self.deferred = deferred
        self.committed: dict[str, TaskEntry] = {}
        self._reset()

    def _reset(self) -> None:
        self.tasks: dict[str, TaskEntry] = {}
        # Ids of terminal tasks: all their state is in the tables and no event changes it,
        # but a second TaskQueued for one must still be told apart from a new task.
        self.settled: set[str] = set()
        self.workers: dict[str, WorkerEntry] = {}
        self.runs: dict[str, RunEntry] = {}
        self._stored: set[str] = set()  # live tasks present in projector_tasks
        self._ignored = 0  # in the batch being folded
        self._by_kind: dict[str, list[Folded]] = {}  # accepted worker and run events

    # --- folding ------------------------------------------------------------------------

    def fold(self, records: Sequence[Record]) -> Batch:
        """Advance the aggregates through (seq, subject, event, signer) records, in stream
        order; one Folded per record, except for those whose signer may not have written them
        (as the coordinator's View judges them), which are left out and listed in `refused`
        as (seq, subject, reason)."""
        out: list[Folded] = []
        append = out.append
        by_class: dict[type, list[Folded]] = {}
        self.refused = []
        self._by_kind = {"worker": [], "run": []}
        # The task path is inlined here, with the fold's dicts in locals: it is nearly every
        # event, and a call and attribute lookups per event were a sixth of the fold.
        tasks, settled, runs, workers = self.tasks, self.settled, self.runs, self.workers
        touched: dict[str, TaskEntry] = {}
        queued: set[str] = set()
        attempts: dict[tuple[str, int], TaskEntry] = {}
        ignored = 0
        for seq, subject, event, signer in records:
            if signer is not None:
                entry = tasks.get(event.task_id) if isinstance(event, OfTask) else None
                why = refusal(signer, subject, event, entry.state if entry is not None else None)
                if why is not None:
                    self.refused.append((seq, subject, why))
                    continue
            cls = type(event)
            if cls in _TASK_EVENTS:
                task_id = event.task_id  # type: ignore[union-attr]
                entry = tasks.get(task_id)
                if entry is None and task_id in settled:
                    # evolve_task ignores every event after a terminal state.
                    run = runs.get(run_of(task_id))
                    folded = Folded(seq, subject, event, False, None, None, run)
                else:
                    before = entry.state if entry is not None else None
                    after = evolve_task(before, event, seq)
                    accepted = after is not None and after is not before
                    if accepted:
                        assert after is not None
                        if entry is None:
                            assert isinstance(event, TaskQueued)
                            count = 1 if event.kind == "command" else len(event.nodeids)
                            entry = TaskEntry(after, count)
                            queued.add(task_id)
                        else:
                            entry, of_attempt = _advance(entry, event, after)
                            if of_attempt:
                                attempts[(task_id, after.attempt)] = entry
                        tasks[task_id] = touched[task_id] = entry
                    worker_id = event.worker_id if cls in _NAMES_WORKER else ""  # type: ignore[union-attr]
                    if entry is None:
                        run = runs.get(run_of(task_id))
                    else:
                        worker_id = worker_id or entry.state.worker_id
                        run = runs.get(entry.state.spec.run_id)
                    worker = workers.get(worker_id)
                    folded = Folded(seq, subject, event, accepted, entry, worker, run)
            elif cls in _WORKER_EVENTS:
                folded = self._worker(seq, subject, event)  # type: ignore[arg-type]
            else:
                folded = self._run(seq, subject, event)  # type: ignore[arg-type]
            if not folded.accepted:
                ignored += 1
            append(folded)
            group = by_class.get(cls)
            if group is None:
                group = by_class[cls] = []
            group.append(folded)
        self._ignored += ignored
        return Batch(out, by_class, self._by_kind, touched, queued, attempts)

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
        folded = Folded(seq, subject, event, accepted, None, entry, None)
        if accepted:
            self._by_kind["worker"].append(folded)
        return folded

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
        folded = Folded(seq, subject, event, accepted, None, None, entry)
        if accepted:
            self._by_kind["run"].append(folded)
        return folded

    # --- persistence --------------------------------------------------------------------

    def write(self, batch: Batch, writes: Writes) -> None:
        """Store the live tasks the batch touched in projector_tasks; forget finished ones
        (unless `deferred`)."""
        if self.deferred:
            return
        live = [(t, e) for t, e in batch.tasks.items() if not e.state.terminal]
        gone = [t for t, e in batch.tasks.items() if e.state.terminal and t in self._stored]
        if gone:
            writes.execute(
                "DELETE FROM projector_tasks WHERE task_id IN (SELECT unnest($1))", [gone]
            )
        if live:
            ids = [t for t, _ in live]
            entries = [self._encoder.encode(e).decode() for _, e in live]
            writes.execute(
                "INSERT OR REPLACE INTO projector_tasks SELECT unnest($1), unnest($2)",
                [ids, entries],
            )

    def store_live(self, writes: Writes) -> None:
        """Store every live task in projector_tasks, in place of what it holds (the end of
        a `deferred` fold)."""
        writes.execute("DELETE FROM projector_tasks")
        if self.tasks:
            entries = [self._encoder.encode(e).decode() for e in self.tasks.values()]
            writes.execute(
                "INSERT INTO projector_tasks SELECT unnest($1), unnest($2)",
                [list(self.tasks), entries],
            )
        self._stored = set(self.tasks)

    def settle(self) -> int:
        """Once the batch's writes are staged: drop terminal tasks from memory, and return
        the number of the batch's events that changed nothing.  (If the writes then fail,
        the projector reloads everything from the tables, `load`.)"""
        for task_id in [t for t, e in self.tasks.items() if e.state.terminal]:
            del self.tasks[task_id]
            self._stored.discard(task_id)
            self.settled.add(task_id)
        if not self.deferred:  # deferred, `store_live` stores them all at once
            self._stored.update(self.tasks)
        ignored, self._ignored = self._ignored, 0
        return ignored

    def load(self, con: duckdb.DuckDBPyConnection) -> None:
        """Replace the in-memory state: live tasks from projector_tasks here; terminal task
        ids, workers and runs are restored by the projections that own their tables (each
        `restore` of `projections.pipeline.registry.Restoring`)."""
        self._reset()
        if self.deferred:  # projector_tasks is not kept up to date
            self.tasks = dict(self.committed)
            return
        decoder = msgspec.json.Decoder(TaskEntry)
        for task_id, entry in con.execute("SELECT task_id, entry FROM projector_tasks").fetchall():
            self.tasks[task_id] = decoder.decode(entry)
        self._stored = set(self.tasks)
