"""The tasks of a run: its commands, or its collected tests split by expected time, each as a
TaskQueued carrying the run's options; and the tests no embedded worker could run.

Pure: the collection, the coordinator's plan (recorded durations, slots) and, for an embedded
run, this machine's capabilities come in as values.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal

import msgspec

from dtf.client.options import RunOptions
from dtf.core import splitting
from dtf.core.envelope import new_event
from dtf.core.requirements import satisfies
from dtf.runner.collect import Collection
from events.api import PlanReply
from events.catalogue import Capabilities, CaseResult, Requirements, TaskQueued
from events.subjects import task_id


def queued_tasks(
    opts: RunOptions,
    run_id: str,
    actor: str,
    collection: Collection | None,
    plan: PlanReply,
    bundle: str,
    *,
    local: Capabilities | None = None,
) -> tuple[list[TaskQueued], list[CaseResult]]:
    """The run's TaskQueued events, and the tests left out as skipped because `local` (the
    machine of an embedded run) lacks what they require.

    With no collection the run is of `opts.commands`, each `opts.repeat` times.
    """
    common: dict[str, Any] = {
        "run_id": run_id,
        "priority": opts.priority,
        "timeout": opts.timeout,
        "max_attempts": opts.max_attempts,
        "reruns": opts.reruns,
        "bundle": bundle,
        # `--cov` alone measures coverage.py's default: ("",).
        "coverage": tuple(opts.coverage or [""]) if opts.coverage is not None else (),
    }

    def queued(n: int, **fields) -> TaskQueued:
        return new_event(
            TaskQueued,
            actor,
            task_id=task_id(run_id, n),
            **common,
            **fields,
        )

    if collection is None:
        argvs = [shlex.split(c) for c in opts.commands] * max(1, opts.repeat)
        tasks = [
            queued(n, kind="command", argv=tuple(argv), requirements=opts.requires)
            for n, argv in enumerate(argvs)
        ]
        return tasks, []
    items = [
        splitting.Item(i.nodeid, i.path, _merge(i.requirements, opts.requires))
        for i in collection.items
    ]
    # options.py allows only these two.
    mode: Literal["file", "test"] = "test" if opts.split == "test" else "file"
    plans = splitting.split(items, slots=max(1, plan.slots), mode=mode, durations=plan.durations)
    unrunnable: list[CaseResult] = []
    if local is not None:
        plans, unrunnable = _runnable_on(local, plans)
    args = tuple([*opts.paths, *opts.pytest_args])
    tasks = [
        queued(
            n,
            kind="pytest",
            nodeids=p.nodeids,
            requirements=p.requirements,
            expected_duration=p.expected,
            args=args,
        )
        for n, p in enumerate(plans)
    ]
    return tasks, unrunnable


def _runnable_on(
    caps: Capabilities, plans: list[splitting.TaskPlan]
) -> tuple[list[splitting.TaskPlan], list[CaseResult]]:
    """Embedded workers are this machine: tests needing hardware it lacks are skipped.

    Waiting would never end, and failing would fail every run on a laptop for a GPU test.
    """
    keep: list[splitting.TaskPlan] = []
    skipped: list[CaseResult] = []
    for plan in plans:
        if satisfies(caps, plan.requirements):
            keep.append(plan)
            continue
        need = msgspec.json.encode(plan.requirements).decode()
        skipped.extend(
            CaseResult(n, "skipped", message=f"needs {need}; this machine does not have it")
            for n in plan.nodeids
        )
    return keep, skipped


def _merge(a: Requirements, b: Requirements) -> Requirements:
    """Requirements from a marker, tightened by those given on the command line."""
    if b == Requirements():
        return a
    fields = {f: getattr(b, f) or getattr(a, f) for f in a.__struct_fields__ if f != "labels"}
    return Requirements(labels=tuple(sorted({*a.labels, *b.labels})), **fields)
