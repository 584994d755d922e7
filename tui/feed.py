"""The dashboard's side of NATS: it keeps a `Fleet` current and fetches what a drill-down asks.

`Feed.run` follows the whole event stream (an ordered push consumer: no acks, nothing the
fleet waits on; a slow dashboard only lets its own consumer fall behind), watches the heartbeat
bucket, reads the lease holder every second and says hello to every known server every two.
Each of these loops survives its server going away: errors are shown, never raised, and
nats-py reconnects underneath.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from pathlib import Path

from dtf.client.admin import request
from dtf.core.describe import describe
from dtf.core.state import View
from dtf.errors import DtfError
from dtf.nats.health import probe
from dtf.nats.store import EventStore, Follower
from events.records import Stored
from events.subjects import ROOT, log_subject, task_subject, worker_subject
from tui.fleet import Fleet

log = logging.getLogger(__name__)

LEASE_EVERY_S = 1.0
PROBE_EVERY_S = 2.0
CONNECTION_EVERY_S = 0.25


class Feed:
    """Owns the dashboard's connection, its follower of the stream and its polling loops."""

    def __init__(self, store: EventStore, fleet: Fleet, *, clock: Callable[[], float] = time.time):
        self.store = store
        self.fleet = fleet
        self.clock = clock
        self.follower: Follower | None = None
        self.problem = ""  # the latest thing that went wrong, for the status line

    @classmethod
    async def connect(
        cls, urls: list[str], fleet: Fleet, *, creds: Path | None = None, tls_ca: Path | None = None
    ) -> Feed:
        """Connected, or one clear DtfError (unreachable server, refused key)."""
        store = await EventStore.connect(
            urls, name="dtf-dashboard", timeout=5.0, creds=creds, tls_ca=tls_ca
        )
        return cls(store, fleet)

    async def run(self) -> None:
        """Follow and poll until cancelled."""
        self.follower = await self.store.follow(f"{ROOT}.>", self.fleet.fold)
        try:
            async with asyncio.TaskGroup() as group:
                group.create_task(self._caught_up(self.follower))
                group.create_task(self._heartbeats())
                group.create_task(self._every(LEASE_EVERY_S, self._lease))
                group.create_task(self._every(PROBE_EVERY_S, self._probe))
                group.create_task(self._every(CONNECTION_EVERY_S, self._connection))
        finally:
            await self.follower.stop()

    async def close(self) -> None:
        await self.store.close(drain=False)

    async def _caught_up(self, follower: Follower) -> None:
        await follower.caught_up.wait()
        self.fleet.caught_up = True

    async def _every(self, seconds: float, step: Callable[[], object]) -> None:
        while True:
            try:
                await step()  # type: ignore[misc]
            except DtfError as exc:  # shown in the status line; the next round tries again
                self.problem = str(exc)
            await asyncio.sleep(seconds)

    async def _lease(self) -> None:
        if self.store.connected_to is not None:
            self.fleet.lease(await self.store.leader())

    async def _probe(self) -> None:
        found = await asyncio.gather(*(probe(a) for a in self.store.known_servers()))
        self.fleet.servers = {health.address: health for health in found}

    async def _connection(self) -> None:
        self.fleet.connection(self.store.connected_to is not None, self.clock())

    async def _heartbeats(self) -> None:
        while True:
            try:
                watch = await self.store.watch_heartbeats()
            except DtfError as exc:
                self.problem = str(exc)
                await asyncio.sleep(1.0)
                continue
            try:
                while True:
                    change = await watch.next_put(timeout=5.0)
                    if change is not None:
                        self.fleet.beat(*change)
                    elif self.store.connected_to is None:
                        break  # a watch does not survive every reconnect: start a new one
            finally:
                await watch.stop()

    # --- what drill-downs ask for -------------------------------------------------------

    async def task_trail(self, task_id: str) -> list[str]:
        """The task's events, one line each, judged as the coordinator judges them."""
        return await self._trail(task_subject(task_id))

    async def worker_trail(self, worker_id: str) -> list[str]:
        return await self._trail(worker_subject(worker_id))

    async def _trail(self, subject: str) -> list[str]:
        records: list[Stored] = await self.store.load(subject, timeout=10)
        view = View()
        return [describe(view.judge(rec)) for rec in records]

    async def tail_output(self, task_id: str, handler: Callable[[bytes], None]) -> Follower:
        """The task's output: the latest of it, then live; `stop()` the result."""
        return await self.store.follow_log(log_subject(task_id), handler)

    async def act(self, action: str, worker_id: str) -> None:
        """Record an operator's drain, enable or disable (DtfError when it cannot be)."""
        await request(self.store, action, worker_id)


async def stop_quietly(follower: Follower | None) -> None:
    if follower is not None:
        with contextlib.suppress(Exception):
            await follower.stop()
