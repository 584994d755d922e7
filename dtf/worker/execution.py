"""Running one attempt on a slot: a pytest task in the slot's persistent pytest process, a
command task in a fresh process group with its checkpoint directory, a health check; the
reruns of failing tests; the live progress notes and output lines.

`Executor` knows how to run a task and what its result event says; the worker (`service.py`)
decides which task runs where and writes the results, guarded.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

from dtf.bundle import BundleCache
from dtf.core.envelope import new_event
from dtf.errors import ConcurrencyConflict
from dtf.nats.store import EventStore
from dtf.runner.pytest_session import PytestSession
from dtf.worker.checkpoint import Checkpoints
from dtf.worker.command import run_command
from dtf.worker.context import TreeWatch
from dtf.worker.coverage import SessionCoverage
from dtf.worker.interpreter import Interpreter
from events.catalogue import (
    AnyEvent,
    CaseProgress,
    CaseResult,
    TaskCheckpointed,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
)
from events.subjects import log_subject, progress_subject

log = logging.getLogger(__name__)
# How long a pytest started ahead of its first task may take to collect.
WARM_UP_S = 300.0
# What a quarantined worker must pass to be trusted again: its Python starts, imports pytest,
# and can write a temporary file.
HEALTH_CHECK = "import pytest, tempfile; tempfile.TemporaryFile().write(b'dtf health check')"


@dataclass
class Slot:
    index: int
    session: PytestSession | None = None
    # (bundle or directory, pytest args, the run when it measures coverage): what a session
    # may be reused for. A measuring session serves one run, whose imports it measured.
    session_key: tuple[str, tuple[str, ...], str] = ("", (), "")
    coverage: SessionCoverage | None = None  # the session's, when it measures coverage
    task_id: str = ""
    attempt: int = 0
    last_seq: int = 0  # sequence of this attempt's latest event: the guard for the next one
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    tree: TreeWatch = field(default_factory=TreeWatch)  # the attempt's processes, sampled


class Executor:
    """Runs attempts for one worker: its interpreter, bundle cache and checkpoints.

    `append_guarded(slot, event)` writes an event of the slot's attempt (a checkpoint taken)
    as the worker guards it; `publish(subject, data)` sends a best-effort core message.
    """

    def __init__(
        self,
        store: EventStore,
        worker_id: str,
        interpreter: Interpreter,
        cache: BundleCache,
        *,
        append_guarded: Callable[[Slot, AnyEvent], Awaitable[int]],
        publish: Callable[[str, bytes], None],
    ) -> None:
        self.store = store
        self.id = worker_id
        self.interpreter = interpreter
        self.cache = cache
        self.checkpoints = Checkpoints(store)
        self.append_guarded = append_guarded
        self.publish = publish
        self._serials = itertools.count(1)  # of the coverage-measuring sessions started

    def _event(self, cls: type, **fields) -> AnyEvent:
        return new_event(cls, self.id, **fields)

    def failed(
        self,
        spec: TaskQueued,
        category: str,
        message: str,
        cases: tuple[CaseResult, ...] = (),
        coverage_key: str = "",
    ) -> AnyEvent:
        return self._event(
            TaskFailed,
            task_id=spec.task_id,
            worker_id=self.id,
            category=category,
            message=message,
            cases=cases,
            coverage_key=coverage_key,
        )

    async def execute(self, slot: Slot, spec: TaskQueued) -> AnyEvent:
        """Run the attempt of `spec` the slot holds; its TaskCompleted or TaskFailed (not yet
        written: the worker appends it, guarded)."""
        workdir = await self.cache.get(self.store, spec.bundle) if spec.bundle else Path.cwd()
        if spec.kind == "health":
            argv = (self.interpreter.path, "-c", HEALTH_CHECK)
            spec = msgspec.structs.replace(spec, kind="command", argv=argv)
        if spec.kind == "command":
            began = time.monotonic()
            outcome = await self._run_with_checkpoints(slot, spec, workdir)
            if outcome.category is not None:
                slot.tree.output_tail = outcome.output_tail
                return self.failed(spec, outcome.category, outcome.message)
            code = outcome.exit_code
            case = CaseResult(
                " ".join(spec.argv),
                "passed" if code == 0 else "failed",
                time.monotonic() - began,
                f"exit code {code}" if code else "",
                outcome.output_tail if code else "",
            )
            return self._event(
                TaskCompleted,
                task_id=spec.task_id,
                worker_id=self.id,
                outcome=case.outcome,
                metrics={m.name: m.value for m in outcome.metrics},
                results=outcome.metrics,
                exit_code=code,
                cases=(case,),
            )
        session = await self._session(slot, workdir, spec)
        runner = asyncio.ensure_future(
            session.run(spec.nodeids, spec.timeout, self._progress_sink(spec.task_id, slot))
        )
        cancel = asyncio.ensure_future(slot.cancelled.wait())
        watching = asyncio.ensure_future(slot.tree.follow(lambda: session.pid))
        await asyncio.wait({runner, cancel}, return_when=asyncio.FIRST_COMPLETED)
        cancel.cancel()
        watching.cancel()
        if not runner.done():  # cancelled: the process goes, the coordinator already decided
            await self.release(slot)
            runner.cancel()
            return self.failed(spec, "cancelled", "cancelled")
        res = runner.result()
        if res.category is None and spec.reruns:
            res = await self._rerun_failures(session, spec, res)
        coverage_key = await slot.coverage.ship(self.store) if slot.coverage else ""
        if res.category is not None:
            return self.failed(spec, res.category, res.message, res.cases, coverage_key)
        failed = any(c.outcome in ("failed", "error") for c in res.cases)
        return self._event(
            TaskCompleted,
            task_id=spec.task_id,
            worker_id=self.id,
            outcome="failed" if failed else "passed",
            cases=res.cases,
            coverage_key=coverage_key,
        )

    async def _run_with_checkpoints(self, slot: Slot, spec: TaskQueued, workdir: Path):
        """Run a command task with DTF_CHECKPOINT_DIR restored from the last attempt's save."""
        # Directory work in a thread: on some filesystems a mkdir/rmdir takes a millisecond,
        # which would hold up every other slot's dispatch on this event loop.
        tmp = Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="dtf-task-"))
        try:
            return await self._command_in(slot, spec, workdir, tmp)
        finally:
            await asyncio.to_thread(shutil.rmtree, tmp, True)

    async def _command_in(self, slot: Slot, spec: TaskQueued, workdir: Path, tmp: Path):
        directory = tmp / "checkpoint"
        if await self.checkpoints.restore(spec.task_id, directory, slot.attempt):
            log.info("task %s resumes from its checkpoint", spec.task_id)

        async def saved(size: int) -> None:
            event = self._event(
                TaskCheckpointed,
                task_id=spec.task_id,
                worker_id=self.id,
                attempt=slot.attempt,
                size=size,
            )
            # Guarded like every write of the attempt; a conflict means it was
            # superseded, which its result write will record.
            with contextlib.suppress(ConcurrencyConflict):
                slot.last_seq = await self.append_guarded(slot, event)

        saver = asyncio.create_task(self.checkpoints.keep_saving(spec.task_id, directory, saved))
        pids: list[int] = []
        watching = asyncio.create_task(slot.tree.follow(lambda: pids[-1] if pids else None))
        try:
            outcome = await run_command(
                list(spec.argv),
                cwd=workdir,
                timeout=spec.timeout,
                on_output=self._log_sink(spec.task_id),
                cancelled=slot.cancelled,
                env=self.interpreter.command_env({"DTF_CHECKPOINT_DIR": str(directory)}),
                results=tmp / "results.json",
                on_start=pids.append,
            )
        finally:
            watching.cancel()
            saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await saver
        if outcome.category is None:
            await self.checkpoints.forget(spec.task_id, slot.attempt)  # nothing to resume now
        return outcome

    async def _rerun_failures(self, session: PytestSession, spec: TaskQueued, res):
        """Run failing tests again, up to `spec.reruns` times; a pass then is flaky."""
        cases = {c.nodeid: c for c in res.cases}
        for rerun in range(1, spec.reruns + 1):
            failing = [n for n, c in cases.items() if c.outcome in ("failed", "error")]
            if not failing:
                break
            again = await session.run(failing, spec.timeout)
            if again.category is not None:
                break  # the process crashed or hung: keep the first verdicts
            for case in again.cases:
                cases[case.nodeid] = msgspec.structs.replace(case, reruns=rerun)
        return dataclasses.replace(res, cases=tuple(cases[c.nodeid] for c in res.cases))

    async def _session(self, slot: Slot, workdir: Path, spec: TaskQueued) -> PytestSession:
        """The slot's persistent pytest process for this bundle and these arguments."""
        key = (spec.bundle or str(workdir), spec.args, spec.run_id if spec.coverage else "")
        if slot.session is not None and slot.session_key != key:
            await self.release(slot)
        if slot.session is None:
            env = None
            if spec.coverage:
                serial = next(self._serials)
                slot.coverage = SessionCoverage(
                    f"{spec.run_id}/{self.id}/{slot.index}/{serial}", workdir, spec.coverage
                )
                env = {**os.environ, **slot.coverage.env()}
            slot.session = PytestSession(
                workdir,
                list(spec.args),
                python=self.interpreter.path,
                env=env,
                on_output=lambda data: self._log(slot, data),
            )
            slot.session_key = key
        return slot.session

    async def release(self, slot: Slot, *, kill: bool = False) -> None:
        """End the slot's session (`kill`: at once, without pytest's teardown) and drop its
        coverage data file, shipped already after each of its tasks."""
        if slot.session is not None:
            await (slot.session.abort() if kill else slot.session.close())
            slot.session = None
        if slot.coverage is not None:
            slot.coverage.remove()
            slot.coverage = None

    def prewarm(self, slots: list[Slot], args: tuple[str, ...]) -> None:
        """Start every slot's pytest for the project in the current directory now.

        `dtf run` asks its embedded workers for this while it collects, so that collection
        here overlaps with its own instead of following it.
        """
        for slot in slots:
            session = PytestSession(Path.cwd(), list(args), python=self.interpreter.path)
            session.begin_warm_up(WARM_UP_S)
            self.adopt(slot, session)

    def adopt(self, slot: Slot, session: PytestSession) -> None:
        """Serve `session` (for the project in the current directory) from `slot`."""
        session.on_output = lambda data: self._log(slot, data)
        slot.session = session
        slot.session_key = (str(Path.cwd()), session.args, "")

    def _progress_sink(self, task_id: str, slot: Slot):
        """Where a running attempt's test results go as they arrive: a core publish each
        (never stored; `dtf run` shows them before the task ends)."""
        subject = progress_subject(task_id)
        attempt = slot.attempt

        def sink(case: CaseResult) -> None:
            note = CaseProgress(task_id, attempt, case.nodeid, case.outcome)
            self.publish(subject, msgspec.json.encode(note))

        return sink

    def _log(self, slot: Slot, data: bytes) -> None:
        if slot.task_id:
            self._log_sink(slot.task_id)(data)

    def _log_sink(self, task_id: str):
        subject = log_subject(task_id)
        return lambda data: self.publish(subject, data)
