"""Exactly-once checks over a recorded event log, for the chaos tests."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

from dtf.core.state import View
from dtf.nats.store import Recorded, Stored
from events.catalogue import (
    RunFinished,
    TaskAssigned,
    TaskCancelled,
    TaskCompleted,
    TaskFailed,
    TaskRetryScheduled,
    TaskSpeculated,
)


def check_exactly_once(stored: Sequence[Stored], run_id: str) -> View:
    """Assert: no task assigned to two workers at once, no task completed twice, and every
    test of the finished run reported exactly once.  Returns the folded View (unreadable
    messages included, as the coordinator folds them)."""
    records = [r for r in stored if isinstance(r, Recorded)]
    per_task: dict[str, list[Recorded]] = defaultdict(list)
    for rec in records:
        task_id = getattr(rec.event, "task_id", None)
        if task_id:
            per_task[task_id].append(rec)
    for task_id, history in per_task.items():
        open_attempts: set[int] = set()  # at most two: one speculative twin of a straggler
        completed = 0
        for rec in history:
            e = rec.event
            if isinstance(e, TaskAssigned):
                assert not open_attempts, f"{task_id}: assigned while {open_attempts} open"
                assert completed == 0, f"{task_id}: assigned after completion"
                open_attempts = {e.attempt}
            elif isinstance(e, TaskSpeculated):
                assert len(open_attempts) == 1, f"{task_id}: speculation beside {open_attempts}"
                open_attempts.add(e.attempt)
            elif isinstance(e, TaskCompleted | TaskFailed):
                assert e.attempt in open_attempts, f"{task_id}: result for attempt {e.attempt}"
                completed += isinstance(e, TaskCompleted)
                # A result ends the task (completed, or failed with no twin); a failed twin
                # leaves the other attempt running.
                open_attempts = (
                    set() if isinstance(e, TaskCompleted) else open_attempts - {e.attempt}
                )
            elif isinstance(e, TaskRetryScheduled):
                assert not open_attempts, f"{task_id}: retry scheduled mid-attempt"
            elif isinstance(e, TaskCancelled) and not e.attempt:
                open_attempts = set()
        assert completed <= 1, f"{task_id} completed {completed} times"
    view = View()
    for message in stored:
        view.fold(message)
    assert any(isinstance(r.event, RunFinished) and r.event.run_id == run_id for r in records)
    counts = Counter(c.nodeid for c in view.run_cases(run_id))
    twice = [n for n, k in counts.items() if k != 1]
    assert not twice, f"reported more than once: {twice}"
    expected = view.runs[run_id].submitted.total_cases
    assert len(counts) == expected, f"{len(counts)} of {expected} tests reported"
    return view
