"""The tasks of a run: its commands, or its collected tests split by expected time, each as a
TaskQueued carrying the run's options; and the tests no worker could run (an embedded run's
machine lacks what they need, or no worker of the fleet has ever offered it).

Pure: the collection, the coordinator's plan (recorded durations, slots, requirements never
offered) and, for an embedded run, this machine's capabilities come in as values.
"""

from __future__ import annotations

import shlex
from typing import Any, Literal

import msgspec

from dtf.client.options import RunOptions
from dtf.core import splitting
from dtf.core.envelope import new_event
from dtf.core.requirements import satisfies, spec
from dtf.errors import ConfigError
from dtf.runner.collect import CollectedItem, Collection
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
    machine of an embedded run) lacks what they require or no worker of the fleet has ever
    offered it (`plan.never_offered`).

    With no collection the run is of `opts.commands`, each `opts.repeat` times. Raises
    ConfigError when nothing is left that any worker could run.
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
        if opts.requires in plan.never_offered:
            raise ConfigError(_never_offered(opts.requires, plan, "the commands"))
        argvs = [shlex.split(c) for c in opts.commands] * max(1, opts.repeat)
        tasks = [
            queued(n, kind="command", argv=tuple(argv), requirements=opts.requires)
            for n, argv in enumerate(argvs)
        ]
        return tasks, []
    items = [splitting.Item(i.nodeid, i.path, req) for i, req in _merged(opts, collection)]
    # options.py allows only these two.
    mode: Literal["file", "test"] = "test" if opts.split == "test" else "file"
    plans = splitting.split(items, slots=max(1, plan.slots), mode=mode, durations=plan.durations)
    unrunnable: list[CaseResult] = []
    if local is not None:
        plans, unrunnable = _runnable_on(local, plans)
    elif plan.never_offered:
        plans, unrunnable = _runnable_on_fleet(plan, plans)
        if not plans and unrunnable:
            raise ConfigError(_never_offered(plan.never_offered[0], plan, "every test"))
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


def wanted(opts: RunOptions, collection: Collection | None) -> list[Requirements]:
    """The distinct requirements of the run's tests (or its commands), to ask the fleet about."""
    if collection is None:
        return [opts.requires]
    return list(dict.fromkeys(req for _, req in _merged(opts, collection)))


def _merged(opts: RunOptions, collection: Collection) -> list[tuple[CollectedItem, Requirements]]:
    return [(i, _merge(i.requirements, opts.requires)) for i in collection.items]


def _runnable_on_fleet(
    plan: PlanReply, plans: list[splitting.TaskPlan]
) -> tuple[list[splitting.TaskPlan], list[CaseResult]]:
    """Tests needing what no worker has ever offered are skipped: they would wait forever."""
    keep = [p for p in plans if p.requirements not in plan.never_offered]
    skipped = [
        CaseResult(n, "skipped", message=f"needs {spec(p.requirements)}; no worker ever offered it")
        for p in plans
        if p.requirements in plan.never_offered
        for n in p.nodeids
    ]
    return keep, skipped


def _never_offered(req: Requirements, plan: PlanReply, who: str) -> str:
    return (
        f"{who} need {spec(req) or 'nothing'}, which no worker of this fleet has ever offered "
        f"({plan.workers} active now; `dtf status` lists what each offers)"
    )


def _merge(a: Requirements, b: Requirements) -> Requirements:
    """Requirements from a marker, tightened by those given on the command line."""
    if b == Requirements():
        return a
    lists = ("labels", "cpu_flags")
    fields: dict[str, Any] = {
        f: getattr(b, f) or getattr(a, f) for f in a.__struct_fields__ if f not in lists
    }
    fields.update({f: tuple(sorted({*getattr(a, f), *getattr(b, f)})) for f in lists})
    return Requirements(**fields)
