"""Errors: one row per failed task and per failed or erroring test, with a fingerprint of the
message and the worker's system context at the time, for grouping and triage."""

from __future__ import annotations

import msgspec

from events.catalogue import CaseResult, SystemContext, TaskCompleted, TaskFailed
from projections.analytics.fingerprint import fingerprint
from projections.pipeline.folded import Batch, Folded
from projections.pipeline.table import Table
from projections.pipeline.writes import Writes, to_json

# One row per TaskFailed and per "error"/"failed" test case; severity is "critical" for
# infrastructure and internal, "warning" for timeout/environment, "info" for test and
# cancelled.  A TaskFailed's cases get rows only when their message differs from the task's,
# so one failure is not repeated once per test.  context: JSON with "worker", "run" (the
# run's labels) and "task" keys, and "system" (events.catalogue.SystemContext) where the
# worker reported its machine's state with the failure.
ERRORS = Table(
    "errors",
    (
        ("at", "DOUBLE"),
        ("run_id", "VARCHAR"),
        ("task_id", "VARCHAR"),
        ("attempt", "INTEGER"),
        ("nodeid", "VARCHAR"),
        ("worker_id", "VARCHAR"),
        ("hostname", "VARCHAR"),
        ("hardware", "VARCHAR"),
        ("category", "VARCHAR"),
        ("severity", "VARCHAR"),
        ("message", "VARCHAR"),
        ("fingerprint", "VARCHAR"),
        ("context", "JSON"),
    ),
)
SEVERITY = {
    "infrastructure": "critical",
    "internal": "critical",
    "timeout": "warning",
    "environment": "warning",
    "test": "info",
    "cancelled": "info",
}
MESSAGE_CHARS = 4000


def severity(category: str) -> str:
    return SEVERITY.get(category, "warning")


def case_message(case: CaseResult) -> str:
    """The short message, else the head of the failure text."""
    return (case.message or case.longrepr)[:MESSAGE_CHARS]


def context_of(f: Folded, system: SystemContext | None = None) -> str:
    """What the worker and the run looked like when the error happened, with the machine's
    state the worker reported with the failure (`system`) where it did."""
    w = f.worker
    ctx: dict[str, object] = {}
    if system is not None:
        ctx["system"] = msgspec.to_builtins(system)
    if w is not None:
        ctx["worker"] = {
            "platform": w.platform,
            "cpus": w.cpus,
            "memory_gb": w.memory_gb,
            "gpus": w.gpus,
            "gpu_names": w.gpu_names,
            "labels": w.labels,
            "slots": w.state.slots,
            "status": w.state.status,
        }
    if f.run is not None:
        ctx["run"] = f.run.labels
    if f.task is not None:
        ctx["task"] = {"kind": f.task.state.spec.kind, "attempt": f.task.state.attempt}
    return to_json(ctx)


class Errors:
    """Owns `errors` (append-only)."""

    name = "errors"
    tables = (ERRORS,)

    def apply(self, batch: Batch, writes: Writes) -> None:
        rows = []
        for f in batch.of(TaskCompleted, TaskFailed):
            event: TaskCompleted | TaskFailed = f.event  # type: ignore[assignment]
            failures: list[tuple[str | None, str, str]] = []  # nodeid, category, message
            category: str
            if isinstance(event, TaskFailed):
                failures.append((None, event.category, event.message[:MESSAGE_CHARS]))
            for case in event.cases:
                if case.outcome not in ("failed", "error"):
                    continue
                message = case_message(case)
                if isinstance(event, TaskFailed):
                    # The task's failure repeated on each test it held is one error, not many.
                    if message == event.message[:MESSAGE_CHARS]:
                        continue
                    category = "test" if case.outcome == "failed" else event.category
                else:
                    category = "test"
                failures.append((case.nodeid, category, message))
            if not failures:
                continue
            assert f.task is not None
            worker_id = event.worker_id or f.task.state.worker_id or None
            host = f.worker.hostname if f.worker else None
            hardware = f.worker.hardware if f.worker else None
            context = context_of(f, event.context if isinstance(event, TaskFailed) else None)
            for nodeid, category, message in failures:
                rows.append(
                    (
                        event.at,
                        f.task.run_id,
                        event.task_id,
                        event.attempt,
                        nodeid,
                        worker_id,
                        host,
                        hardware,
                        category,
                        severity(category),
                        message,
                        fingerprint(message),
                        context,
                    )
                )
        writes.insert(ERRORS, rows)


PROJECTION = Errors()
