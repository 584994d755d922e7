"""`dtf run`: collect, split, submit, follow the run live, summarise, exit like pytest.

With no server configured it starts the embedded cluster (`dtf.client.embedded`) while collection
runs, and stops it at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import msgspec
from rich.console import Console

from dtf.bundle import upload
from dtf.client import reports
from dtf.client.config import Settings, server_url, servers
from dtf.client.coverage import combine_and_report, parse_reports
from dtf.client.embedded import (
    EmbeddedCluster,
    first_collection,
    start_local_server,
    start_sessions,
)
from dtf.client.options import RunOptions, check_flags
from dtf.client.progress import RunProgress
from dtf.client.summary import collection_interrupted, render_summary
from dtf.client.tasks import queued_tasks, wanted
from dtf.coordinator.service import Coordinator
from dtf.core import outcomes, quarantine
from dtf.core.envelope import new_event
from dtf.core.scheduling import strategy
from dtf.core.state import TaskState, View
from dtf.errors import ConfigError, DtfError, StoreError
from dtf.nats.store import EventStore, Recorded, Stored
from dtf.runner.collect import Collection, collect, collection_of
from dtf.runner.pytest_session import PytestSession
from dtf.worker.hardware import detect
from dtf.worker.interpreter import probe
from events.api import PLAN_SUBJECT, PlanReply, PlanRequest
from events.catalogue import (
    CaseProgress,
    CaseResult,
    RunCancelRequested,
    RunFinished,
    RunSubmitted,
    TaskCompleted,
    TaskFailed,
)
from events.subjects import run_progress, run_subject, run_tasks

STALL_NOTICE_S = 15.0
CANCEL_WRITE_S = 0.5  # how long Ctrl-C waits to record the cancellation on a real cluster


def new_run_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def options_from(settings: Settings, **cli) -> RunOptions:
    """Merge command-line values (None: not given) over `[tool.dtf]` settings.

    The settings were checked when they were loaded; the flags are checked here, by the same
    rules (`dtf.client.options`).
    """
    check_flags(cli)
    merged: dict[str, Any] = {
        "workers": settings.workers,
        "split": settings.split,
        "timeout": settings.timeout,
        "strategy": settings.strategy,
        "labels": settings.labels,
        "python": settings.python or None,
    }
    merged.update({k: v for k, v in cli.items() if v is not None})
    merged["server"] = server_url(cli.get("server"), settings)
    return RunOptions(**merged)


class RunClient:
    """One `dtf run`: owns the embedded cluster (if any), the store and the run's View."""

    def __init__(self, opts: RunOptions, console: Console) -> None:
        self.opts = opts
        self.console = console
        self.run_id = new_run_id()
        self.actor = f"client-{socket.gethostname()}-{os.getpid()}"
        self.view = View()
        self.cluster: EmbeddedCluster | None = None
        self.finished = asyncio.Event()
        self.progress: RunProgress | None = None
        self.unrunnable: list[CaseResult] = []
        self.coordinator: asyncio.Task | None = None
        self.interrupted = False
        # The finished run's results, for a caller that reports on them (`dtf ci`).
        self.cases: list[CaseResult] = []
        self.seconds = 0.0
        self.collection: Collection | None = None  # None: a --command run, or not collected
        self.coverage_keys: set[str] = set()  # the sessions' coverage data, named by results
        self.coverage_total: float | None = None  # --cov: the combined percentage

    def _check_paths(self) -> None:
        for path in self.opts.paths:
            if not (self.opts.root / path).exists():
                raise ConfigError(f"path not found: {path}")

    async def execute(self) -> int:
        opts = self.opts
        started = time.monotonic()
        self._check_paths()
        workers = opts.workers or os.cpu_count() or 1
        args = [*opts.paths, *opts.pytest_args]
        python = opts.python or sys.executable
        sessions: list[PytestSession] = []
        collecting = None
        if opts.server is None and not opts.commands and opts.coverage is None:
            # The embedded workers' pytest children start before anything else: they collect
            # the suite anyway, and the first to finish gives the run its collection. (Not
            # for --cov: a measuring child is started for its run, measuring from its start.)
            sessions = start_sessions(workers, opts.root, args, python)
        elif not opts.commands:
            collecting = asyncio.ensure_future(
                asyncio.to_thread(collect, opts.root, args, python=python)
            )
        coordinator: asyncio.Task | None = None
        coordinator_stop = asyncio.Event()
        try:
            if opts.server is None:
                probing = asyncio.ensure_future(asyncio.to_thread(probe, opts.python))
                self.cluster = await asyncio.to_thread(start_local_server)
                url = self.cluster.url
            else:
                url = opts.server
            store = await EventStore.connect(servers(url), name=self.actor)
            try:
                if self.cluster is not None:
                    # The embedded coordinator and workers live in this process: interpreters
                    # fewer to start on a small machine, and they die with the run.
                    coord = Coordinator(
                        store, strategy(opts.strategy), coordinator_id=f"coordinator-{os.getpid()}"
                    )
                    coordinator = asyncio.create_task(coord.run(coordinator_stop))
                    self.coordinator = coordinator
                    await self.cluster.start_workers(
                        workers, labels=opts.labels, interpreter=await probing, sessions=sessions
                    )
                collection = None
                if sessions:
                    collection = await self._collect_in_sessions(sessions, args, python)
                elif collecting is not None:
                    collection = await collecting
                self.collection = collection
                if collection is not None:
                    code = self._collection_problems(collection)
                    if code is not None:
                        return code
                return await self._submit_and_follow(store, collection, workers, started)
            finally:
                coordinator_stop.set()
                if coordinator is not None:
                    if self.interrupted:
                        coordinator.cancel()  # no goodbyes: its writes would only fail now
                    with contextlib.suppress(BaseException):
                        await coordinator
                await store.close(drain=self.cluster is None and not self.interrupted)
        finally:
            if collecting is not None and not collecting.done():
                collecting.cancel()
            if self.cluster is not None:
                await self.cluster.stop()
            for session in sessions:  # a start that failed before the workers took them
                await session.abort()

    async def _collect_in_sessions(
        self, sessions: list[PytestSession], args: list[str], python: str
    ) -> Collection:
        """The collection of the first embedded session ready; a collect run when none
        could start, which then says why in one line (`CollectionError`)."""
        found = await first_collection(sessions)
        if found is not None:
            return collection_of(found)
        return await asyncio.to_thread(collect, self.opts.root, args, python=python)

    def _collection_problems(self, collection: Collection) -> int | None:
        """pytest's behaviour: collection errors interrupt (2), nothing collected is 5."""
        if collection.errors:
            self.cases = [*collection.precollected, *collection.errors]
            render_summary(
                self.console,
                [*collection.precollected, *collection.errors],
                seconds=0.0,
                pytest_args=[*self.opts.paths, *self.opts.pytest_args],
                root=self.opts.root,
                interrupted=collection_interrupted(len(collection.errors)),
            )
            return 2
        if not collection.items and not collection.precollected:
            self.console.print("[yellow]no tests ran[/] (nothing collected)")
            return 5
        return None

    async def _plan(self, store: EventStore, request: PlanRequest, workers: int) -> PlanReply:
        """Ask a coordinator for recorded durations, capacity and the requirements no worker
        ever offered; defaults if none answers."""
        if self.cluster is not None:
            return PlanReply({}, workers, workers)  # a fresh embedded store knows nothing yet
        try:
            answer = await store.request(PLAN_SUBJECT, msgspec.json.encode(request), timeout=2.0)
            return msgspec.json.decode(answer, type=PlanReply)
        except (StoreError, msgspec.DecodeError, RecursionError):
            self.console.print(
                "[yellow]no coordinator answered; tasks will wait in the queue "
                "until one runs (dtf coordinator)[/]"
            )
            return PlanReply({}, 4, 0)

    async def _submit_and_follow(
        self, store: EventStore, collection: Collection | None, workers: int, started: float
    ) -> int:
        opts = self.opts
        # Embedded workers run in this directory; remote ones get the code as a bundle.
        bundle = "" if self.cluster is not None else await upload(store, opts.root)
        nodeids = [i.nodeid for i in collection.items] if collection else []
        plan = await self._plan(store, PlanRequest(nodeids, wanted(opts, collection)), workers)
        local = detect(tuple(opts.labels)) if self.cluster is not None else None
        tasks, unrunnable = queued_tasks(
            opts, self.run_id, self.actor, collection, plan, bundle, local=local
        )
        if unrunnable and local is None:
            self.console.print(
                f"[yellow]{len(unrunnable)} test(s) skipped: no worker of this fleet has ever "
                f"offered what they need ({unrunnable[0].message})[/]"
            )
        self.unrunnable.extend(unrunnable)
        precollected = (*collection.precollected, *self.unrunnable) if collection else ()
        total = sum(len(t.nodeids) for t in tasks) + len(precollected) if collection else len(tasks)
        submitted = new_event(
            RunSubmitted,
            self.actor,
            run_id=self.run_id,
            bundle=bundle,
            root=str(opts.root),
            args=tuple([*opts.paths, *opts.pytest_args]),
            task_ids=tuple(t.task_id for t in tasks),
            total_cases=total,
            precollected=tuple(precollected),
            labels={**git_labels(opts.root), **opts.tags},
        )
        first_seq = await store.append(submitted, expected_last_seq=0)
        self.view.apply(submitted, first_seq)
        where = "embedded server" if self.cluster else store.servers[0]
        self.console.print(
            f"dtf run {self.run_id}: {total} "
            f"{'tests' if collection else 'commands'} in {len(tasks)} tasks "
            f"({where})"
        )
        self.progress = RunProgress(
            self.console,
            total,
            enabled=opts.progress,
            count_cases=collection is not None,
            plain_every=opts.plain_progress,
        )
        follower = await store.follow(
            [run_subject(self.run_id), run_tasks(self.run_id)], self._on_record, from_seq=first_seq
        )
        notes = await store.listen(run_progress(self.run_id), self._on_progress)
        try:
            await store.append_many(tasks)
            with self.progress:
                await self._wait(store)
        finally:
            await notes.stop()
            await follower.stop()
        seconds = time.monotonic() - started
        code = self._finish(seconds, collection is not None)
        if opts.coverage is not None:
            reports = parse_reports(opts.coverage_reports or ["term"])
            self.coverage_total = await combine_and_report(
                store, self.coverage_keys, opts.root, opts.coverage, reports, self.console
            )
        return code

    def _on_progress(self, _subject: str, data: bytes) -> None:
        """A worker's note of one test's result: moves the live display, decides nothing."""
        try:
            note = msgspec.json.decode(data, type=CaseProgress)
        except (msgspec.DecodeError, RecursionError):
            return
        if self.progress is not None:
            self.progress.case_done(self.view, note)

    def _on_record(self, rec: Stored) -> None:
        if not self.view.fold(rec):
            return
        assert isinstance(rec, Recorded)
        if isinstance(rec.event, TaskCompleted | TaskFailed) and rec.event.coverage_key:
            self.coverage_keys.add(rec.event.coverage_key)
        if self.progress is not None:
            self.progress.update(self.view, self.run_id, rec.event)
        if isinstance(rec.event, RunFinished):
            self.finished.set()

    async def _wait(self, store: EventStore) -> None:
        """Until the run finishes; notices a dead embedded cluster and long stalls."""
        last_change, last_seq = time.monotonic(), self.view.last_seq
        try:
            while not self.finished.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.finished.wait(), 0.5)
                if self.coordinator is not None and self.coordinator.done():
                    raise DtfError(
                        f"the embedded coordinator stopped: {self.coordinator.exception()!r}"
                    )
                if self.cluster is not None and (dead := self.cluster.dead_worker()):
                    raise DtfError(f"an embedded worker stopped: {dead!r}")
                if self.view.last_seq != last_seq:
                    last_change, last_seq = time.monotonic(), self.view.last_seq
                elif time.monotonic() - last_change > STALL_NOTICE_S:
                    queued = sum(1 for t in self.view.tasks_of(self.run_id) if t.status == "queued")
                    leader, alive = await _cluster_state(store)
                    self.console.print(f"[yellow]{stall_notice(queued, leader, alive)}[/]")
                    last_change = time.monotonic()
        except asyncio.CancelledError:
            self.interrupted = True
            if self.cluster is None:  # an embedded run's store goes with it: nobody to tell
                cancel = new_event(
                    RunCancelRequested, self.actor, run_id=self.run_id, reason="interrupted"
                )
                # Worth a moment, not more: Ctrl-C must stop dtf within a second.
                with contextlib.suppress(DtfError, TimeoutError):
                    await asyncio.wait_for(asyncio.shield(store.append(cancel)), CANCEL_WRITE_S)
            raise

    def _finish(self, seconds: float, is_pytest: bool) -> int:
        cases = self.view.run_cases(self.run_id)
        if not is_pytest:
            cases = [self._command_case(t) for t in self.view.tasks_of(self.run_id)]
        self.cases, self.seconds = cases, seconds
        counts = outcomes.count(cases)
        forgiven = quarantine.forgiven(cases, self.opts.quarantine)
        code = outcomes.exit_code(_excused(cases, forgiven))
        render_summary(
            self.console,
            cases,
            seconds=seconds,
            slowest=self.opts.slowest,
            verbose=self.opts.verbose,
            pytest_args=[*self.opts.paths, *self.opts.pytest_args],
            root=self.opts.root,
        )
        if forgiven:
            self.console.print(
                f"[yellow]quarantined: {len(forgiven)} failing test(s) did not fail the run: "
                f"{', '.join(c.nodeid for c in forgiven[:5])}"
                f"{' ...' if len(forgiven) > 5 else ''}[/]"
            )
        if self.view.rejected:
            where = "" if self.cluster else f"; `dtf show run {self.run_id}` lists them"
            self.console.print(
                f"[yellow]note: {self.view.rejected} message(s) on this run's subjects were "
                f"not readable events and were ignored{where}[/]"
            )
        if self.opts.junit_xml:
            reports.write_junit_xml(
                self.opts.junit_xml,
                cases,
                duration=seconds,
                hostname=socket.gethostname(),
                timestamp=time.time(),
            )
        if self.opts.json:
            metrics = {t.task_id: t.metrics for t in self.view.tasks_of(self.run_id) if t.metrics}
            reports.write_json(
                self.opts.json,
                self.run_id,
                cases,
                counts,
                seconds,
                code,
                extra={"metrics": metrics},
            )
        return code

    def _command_case(self, task: TaskState) -> CaseResult:
        """A command task as one case, its id `<task id>::<command line>`."""
        nodeid = f"{task.task_id}::{' '.join(task.spec.argv)}"
        if task.status == "completed" and task.cases:
            return msgspec.structs.replace(task.cases[0], nodeid=nodeid)
        return CaseResult(nodeid, "error", message=task.message or task.status)


def _excused(cases: list[CaseResult], forgiven: list[CaseResult]) -> list[CaseResult]:
    """The cases as the exit code judges them: a quarantined failure counts as expected."""
    excused = {id(c) for c in forgiven}
    return [msgspec.structs.replace(c, outcome="xfailed") if id(c) in excused else c for c in cases]


def git_labels(root: Path) -> dict[str, str]:
    """The commit and branch of the project, when it is a git checkout."""
    labels: dict[str, str] = {}
    for key, cmd in (
        ("commit", ["git", "rev-parse", "HEAD"]),
        ("branch", ["git", "rev-parse", "--abbrev-ref", "HEAD"]),
    ):
        try:
            out = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return labels
        if out.returncode == 0 and out.stdout.strip():
            labels[key] = out.stdout.strip()
    return labels


async def _cluster_state(store: EventStore) -> tuple[str | None, int | None]:
    """(the coordinator holding the lease, live workers); None where it cannot be read."""
    leader: str | None = None
    alive: int | None = None
    with contextlib.suppress(DtfError):
        leader = await store.leader()
        alive = len(await store.live_workers())
    return leader, alive


def stall_notice(queued: int, leader: str | None, alive: int | None) -> str:
    """What to tell a user whose run has not moved for a while, and what to do about it."""
    head = f"waiting: {queued} task(s) queued, nothing changed for {STALL_NOTICE_S:.0f}s;"
    if leader is None:
        return f"{head} no coordinator is running (start one: dtf coordinator --server URL)"
    if alive == 0:
        return f"{head} no worker is alive (start one: dtf worker --server URL)"
    return f"{head} is a worker with the required hardware running? (dtf status)"
