"""The embedded cluster `dtf run` starts when no server is configured.

A nats-server on 127.0.0.1 with a temporary store, and N one-slot workers that live in the
`dtf run` process itself, beside its coordinator: a worker interpreter would cost a start and
dtf's imports each, which on a small machine is time the tests wait for.  Their pytest
children start first of all, before the server, so that collecting the suite (which they do
anyway) overlaps everything else; the first to finish gives `dtf run` its collection too.

The workers' log goes to a file in a log directory, kept when something went wrong.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dtf.nats.server import LocalServer, start_server
from dtf.nats.store import EventStore
from dtf.runner.child.wire import Collected
from dtf.runner.pytest_session import PytestSession
from dtf.worker.execution import WARM_UP_S
from dtf.worker.interpreter import Interpreter
from dtf.worker.service import Worker

# The loggers of the in-process workers: their warnings belong in the log file, not among
# the run's results on the terminal.
WORKER_LOGGERS = ("dtf.worker", "dtf.runner", "dtf.bundle")
STOP_WAIT_S = 5.0
log = logging.getLogger(__name__)


def start_sessions(count: int, root: Path, args: Sequence[str], python: str) -> list[PytestSession]:
    """`count` pytest children for the project, collecting from now on."""
    sessions = [PytestSession(root, list(args), python=python) for _ in range(count)]
    for session in sessions:
        session.begin_warm_up(WARM_UP_S)
    return sessions


async def first_collection(sessions: Sequence[PytestSession]) -> Collected | None:
    """The collection of whichever session collects first; None when none could start."""
    pending = {session.warming for session in sessions if session.warming is not None}
    while pending:
        _, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for session in sessions:
            if session.collection is not None:
                return session.collection
    return next((s.collection for s in sessions if s.collection is not None), None)


@dataclass
class EmbeddedCluster:
    """Owns the server, the log directory, and the in-process workers with their stores."""

    server: LocalServer
    log_dir: Path
    workers: list[Worker] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stores: list[EventStore] = field(default_factory=list)
    _handler: logging.Handler | None = None

    @property
    def url(self) -> str:
        return self.server.url

    async def start_workers(
        self,
        count: int,
        *,
        labels: Sequence[str],
        interpreter: Interpreter,
        sessions: Sequence[PytestSession] = (),
    ) -> None:
        """`count` one-slot workers, each on its own connection; slot i serves sessions[i]."""
        self._log_to_file()
        for i in range(count):
            store = await EventStore.connect(self.url, name=f"dtf-local-{i}")
            self._stores.append(store)
            worker = Worker(
                store,
                worker_id=f"local-{i}",
                labels=tuple(labels),
                interpreter=interpreter,
                sessions=sessions[i : i + 1],
            )
            self.workers.append(worker)
            self._tasks.append(asyncio.create_task(worker.run(asyncio.Event())))

    def dead_worker(self) -> BaseException | None:
        """Why a worker stopped, while the run still needs it (None: all are running)."""
        for task in self._tasks:
            if task.done():
                return task.exception() or RuntimeError("an embedded worker stopped")
        return None

    async def stop(self, keep_logs: bool = False) -> None:
        """Kill the workers' pytest children, stop the workers, then the server.

        The store is thrown away, so a worker's orderly goodbye (events, consumer cleanup)
        buys nothing here.
        """
        for worker in self.workers:
            await worker.close()
        for task in self._tasks:
            task.cancel()
        if self._tasks:
            # Bounded: a run that has printed its results must never hang on its way out.
            _, pending = await asyncio.wait(self._tasks, timeout=STOP_WAIT_S)
            if pending:
                log.warning("%d embedded worker(s) did not stop in time", len(pending))
        for store in self._stores:
            await store.close(drain=False)
        await asyncio.to_thread(self.server.kill)
        if self._handler is not None:
            for name in WORKER_LOGGERS:
                logging.getLogger(name).removeHandler(self._handler)
                logging.getLogger(name).propagate = True
            self._handler.close()
        if not keep_logs:
            shutil.rmtree(self.log_dir, ignore_errors=True)

    def _log_to_file(self) -> None:
        handler = logging.FileHandler(self.log_dir / "workers.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        for name in WORKER_LOGGERS:
            logging.getLogger(name).addHandler(handler)
            logging.getLogger(name).propagate = False
        self._handler = handler


def start_local_server() -> EmbeddedCluster:
    """The embedded server (lazy fsync: its store is a temporary directory deleted after the
    run, so fsync would buy nothing), with no workers yet."""
    log_dir = Path(tempfile.mkdtemp(prefix="dtf-logs-"))
    server = start_server(log_file=log_dir / "nats-server.log", durable=False)
    return EmbeddedCluster(server, log_dir)
