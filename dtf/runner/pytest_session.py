"""A persistent pytest process per worker slot: it collects once, then runs batches.

Starting pytest costs 0.5-1 s (interpreter, imports, collection), so one child per slot
collects once and then runs the batches of node ids it is sent (see `batch_loop` for how
fixtures are scoped per batch).  A test that crashes or hangs its process only costs the
batch it is in: the process is killed (with everything it started) and the next `run()`
starts a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from dtf.runner.batch import Batch, SessionResult
from dtf.runner.child.failure_text import summarize, truncate_middle
from dtf.runner.child.wire import BatchDone, CaseDone, Collected, Ready, WireCase
from dtf.runner.child_process import DRAIN_GRACE, ChildProcess, Exited
from dtf.runner.collect import case_result
from dtf.runner.launch import describe_exit
from events.catalogue import CaseResult

__all__ = ["PytestSession", "SessionResult"]

CLOSE_GRACE = 10.0  # seconds pytest gets to tear down and print its summary on close()


class PytestSession:
    """Owns one pytest child (started lazily, replaced after a crash or timeout), the node ids
    it collected and the collection errors it reported."""

    def __init__(
        self,
        root: Path,
        args: Sequence[str],
        *,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        on_output: Callable[[bytes], None] | None = None,
    ) -> None:
        """`env` is the child's whole environment (default: ours); `on_output` receives the
        child's stdout and stderr as they arrive."""
        self._root = root
        self._args = tuple(args)
        self._python = python
        self._env = env
        # Public: whoever serves the session may route its output elsewhere later.
        self.on_output = on_output
        self._child: ChildProcess | None = None
        self._collected: frozenset[str] = frozenset()
        self._errors: tuple[WireCase, ...] = ()
        self._collection: Collected | None = None
        self._running = False
        self._warming: asyncio.Task[None] | None = None

    @property
    def args(self) -> tuple[str, ...]:
        """The pytest arguments the child runs with."""
        return self._args

    @property
    def warming(self) -> asyncio.Task[None] | None:
        """The warm-up begun with `begin_warm_up`, until a `run()` has waited for it."""
        return self._warming

    @property
    def collection(self) -> Collected | None:
        """What the child collected, as collect mode reports it; None until it has, and
        after a failed start."""
        return self._collection if self.alive else None

    @property
    def alive(self) -> bool:
        """Whether a pytest child is running (and has collected, or is collecting)."""
        return self._child is not None and self._child.alive

    @property
    def pid(self) -> int | None:
        """The process id of the running pytest child (its process group id too)."""
        return self._child.pid if self.alive and self._child is not None else None

    async def run(
        self,
        nodeids: Sequence[str],
        timeout: float,
        on_case: Callable[[CaseResult], None] | None = None,
    ) -> SessionResult:
        """Run `nodeids` as one batch, within `timeout` seconds (including a first start).

        Never raises for test failures, crashes, timeouts or a broken environment: those are
        reported in the result.  Cancelling the call kills the child.  One batch at a time.
        `on_case` hears of each test's result as it arrives (live progress).
        """
        if self._warming is not None:  # a warm-up begun earlier: the child may be ready now
            warming, self._warming = self._warming, None
            await warming
        if self._running:
            raise RuntimeError("PytestSession.run() is already running a batch")
        batch = Batch(nodeids)
        if not batch.requested:
            return SessionResult(())
        self._running = True
        try:
            async with asyncio.timeout(timeout):
                return await self._run(batch, on_case)
        except TimeoutError:
            return await self._timed_out(batch, timeout)
        except BaseException:
            await self._discard("run() was cancelled")
            raise
        finally:
            self._running = False

    def begin_warm_up(self, timeout: float) -> asyncio.Task[None]:
        """`warm_up` in the background; the next `run()` waits for it.  Returns its task."""
        self._warming = asyncio.create_task(self.warm_up(timeout))
        return self._warming

    async def abort(self) -> None:
        """Kill the child at once, without pytest's teardown (the run is over anyway)."""
        warming, self._warming = self._warming, None
        if warming is not None:
            warming.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await warming
        await self._discard("aborted")

    async def warm_up(self, timeout: float) -> None:
        """Start the child and let it collect now, so that the first batch finds it ready.

        Failures are not reported here: the next `run()` meets them and reports them.
        """
        if self._running or self.alive:
            return
        self._running = True
        try:
            async with asyncio.timeout(timeout):
                await self._discard("")
                await self._start(Batch(()))
        except TimeoutError:
            await self._discard("warm-up timed out")
        finally:
            self._running = False

    async def close(self) -> None:
        """End the pytest session gracefully (teardown, summary), killing it if it lingers.

        Called while a batch runs, it kills the child at once; that `run()` then reports the
        rest of its batch as not run ("infrastructure").
        """
        child, self._child = self._child, None
        if child is None:
            return
        if self._running:
            child.kill("session closed while running a batch")
        await child.close(CLOSE_GRACE)

    async def _run(
        self, batch: Batch, on_case: Callable[[CaseResult], None] | None
    ) -> SessionResult:
        if not self.alive:
            await self._discard("")
            failure = await self._start(batch)
            if failure is not None:
                return failure
        child = self._child
        assert child is not None
        to_run = batch.plan(self._collected, self._errors)
        if not to_run:
            return batch.finished()
        child.send(to_run)
        while True:
            message = await child.receive()
            if isinstance(message, CaseDone):
                case = case_result(message.case)
                batch.done.append(case)
                if on_case is not None:
                    on_case(case)
            elif isinstance(message, BatchDone):
                return batch.finished()
            elif isinstance(message, Exited):
                tail = truncate_middle(child.output_tail())
                if self._child is child:
                    await self._discard("")
                return batch.interrupted("infrastructure", _crash_cause(message), tail)

    async def _start(self, batch: Batch) -> SessionResult | None:
        """Start a child and wait until it has collected; a result when it could not."""
        try:
            child = await ChildProcess.start(
                self._python, self._root, self._args, self._env, self._relay_output
            )
        except OSError as exc:
            cause = f"cannot start {self._python}: {exc.strerror or exc}"
            return batch.failed("environment", cause)
        self._child = child
        message = await child.receive()
        if isinstance(message, Ready):
            self._collected = frozenset(message.nodeids)
            self._errors = message.errors
            self._collection = message.collection
            return None
        tail = truncate_middle(child.output_tail())
        if self._child is child:
            await self._discard("")
        if isinstance(message, Exited) and message.returncode < 0:
            return batch.failed("infrastructure", f"{_crash_cause(message)} while starting", tail)
        cause = f"pytest could not start: {summarize(tail) or 'no output'}"
        return batch.failed("environment", cause, tail)

    async def _timed_out(self, batch: Batch, timeout: float) -> SessionResult:
        cause = f"timeout after {timeout:g}s"
        child = self._child
        if child is not None:
            child.kill(cause)
            await _drain(child, batch)
            await self._discard("")
        if batch.to_run:
            return batch.interrupted("timeout", cause)
        return batch.failed("timeout", f"{cause} while pytest was starting")

    def _relay_output(self, data: bytes) -> None:
        if self.on_output is not None:
            self.on_output(data)

    async def _discard(self, reason: str) -> None:
        """Forget the current child, killing it first when it still runs."""
        child, self._child = self._child, None
        if child is None:
            return
        if child.alive:
            child.kill(reason)
        await child.close(DRAIN_GRACE)


async def _drain(child: ChildProcess, batch: Batch) -> None:
    """Keep the results a killed child sent before it died."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_GRACE + 5):
            while not isinstance(message := await child.receive(), Exited):
                if isinstance(message, CaseDone):
                    batch.done.append(case_result(message.case))


def _crash_cause(exited: Exited) -> str:
    if exited.reason:
        return f"pytest process was killed: {exited.reason}"
    return f"pytest process {describe_exit(exited.returncode)}"
