"""A View frozen at a stream sequence, so that a reader starts from it and folds only the tail.

What is kept is what the folds build up (tasks, workers, runs, every aggregate's last
sequence, recorded durations, failure streaks, the races to cancel, the health checks, the
counts); what is derived from those (a worker's active tasks, a run's tasks, the queue, the
retries waiting, each run's count of ended tasks) is rebuilt on load, so a snapshot cannot
hold an index that disagrees with its own tasks.

A snapshot is trusted only whole: bytes that do not decode, or that name another `SCHEMA`,
give None, and the reader replays from the start.  Raise `SCHEMA` whenever a state struct or
an `evolve_*` function changes what it keeps: a snapshot folded by older code is then
ignored rather than carried forward.
"""

from __future__ import annotations

import zlib
from collections import deque

import msgspec

from dtf.core.state import REJECTIONS_KEPT, RunState, TaskState, View, WorkerState
from events.records import Rejected

SCHEMA = 1
# The leader snapshots its View after this many messages since the last snapshot, at most
# once an INTERVAL_S: a coordinator's start then replays about this many at most.
EVERY = 20_000
INTERVAL_S = 60.0
_MAGIC = b"dtf-view"


class Frozen(msgspec.Struct, frozen=True):
    schema: int
    through: int  # every message up to this sequence is folded in
    last_seq: int
    tasks: dict[str, TaskState]
    workers: dict[str, WorkerState]
    runs: dict[str, RunState]
    versions: dict[str, int]
    durations: dict[str, float]
    infra_streak: dict[str, int]
    losers: dict[str, int]
    health: dict[str, str]
    ignored: int
    rejected: int
    rejections: list[Rejected]
    forget_finished: bool = False


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(Frozen)


def freeze(view: View, through: int | None = None) -> bytes:
    """The View as bytes: msgpack, compressed (a task's text repeats across tasks).

    `through` is the sequence up to which every message is folded in (default: the View's
    last).  A coordinator's View may hold its own writes beyond what its follower delivered;
    those come again after `through` and are skipped as applied, as they are live.
    """
    frozen = Frozen(
        schema=SCHEMA,
        through=view.last_seq if through is None else through,
        last_seq=view.last_seq,
        tasks=view.tasks,
        workers=view.workers,
        runs=view.runs,
        versions=view.versions,
        durations=view.durations,
        infra_streak=view.infra_streak,
        losers=view.losers,
        health=view.health,
        ignored=view.ignored,
        rejected=view.rejected,
        rejections=list(view.rejections),
        forget_finished=view.forget_finished,
    )
    return _MAGIC + zlib.compress(_encoder.encode(frozen), 1)


def thaw(data: bytes) -> tuple[View, int] | None:
    """The View a snapshot holds and the sequence it is whole through, or None when `data`
    is not a whole snapshot of this schema."""
    if not data.startswith(_MAGIC):
        return None
    try:
        frozen = _decoder.decode(zlib.decompress(data[len(_MAGIC) :]))
    except (zlib.error, msgspec.DecodeError, ValueError, TypeError, RecursionError):
        return None
    if frozen.schema != SCHEMA:
        return None
    view = View(
        tasks=frozen.tasks,
        workers=frozen.workers,
        runs=frozen.runs,
        versions=frozen.versions,
        durations=frozen.durations,
        infra_streak=frozen.infra_streak,
        losers=frozen.losers,
        health=frozen.health,
        last_seq=frozen.last_seq,
        ignored=frozen.ignored,
        rejected=frozen.rejected,
        rejections=deque(frozen.rejections, maxlen=REJECTIONS_KEPT),
        forget_finished=frozen.forget_finished,
    )
    for task_id, task in view.tasks.items():  # in the order the tasks were first seen
        run_id = task.spec.run_id
        run = view.runs.get(run_id)
        forgotten = view.forget_finished and run is not None and run.finished is not None
        if not forgotten:  # (a kept health check of a forgotten run is listed nowhere)
            view.run_tasks.setdefault(run_id, []).append(task_id)
        for worker_id in task.busy_workers:
            view.active.setdefault(worker_id, set()).add(task_id)
        if task.terminal and not forgotten:
            view.terminal_count[run_id] = view.terminal_count.get(run_id, 0) + 1
        elif task.status == "queued":
            view.queued_ids[task_id] = None
        elif task.status == "retrying":
            view.retrying_ids[task_id] = None
    return view, frozen.through
