"""The dashboard driven by Textual's Pilot, fed by the recorded fleet through a real
nats-server: every pane and key, the drill-downs, a worker action behind its confirmation,
alerts, and a server that goes away."""

from __future__ import annotations

import time

import msgspec
import pytest

from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore
from events.api import Heartbeat
from events.subjects import log_subject, worker_subject
from tests.support.fleet_log import fleet_events
from tests.support.polling import eventually_async
from tui.alerts.player import Player
from tui.app import Dashboard
from tui.feed import Feed
from tui.fleet import Fleet
from tui.screens.confirm import Confirm
from tui.screens.help import Help
from tui.screens.runs import RunScreen
from tui.screens.task import TaskScreen
from tui.screens.worker import WorkerScreen
from tui.widgets.table import LiveTable

pytestmark = pytest.mark.slow


def silent() -> Player:
    return Player(bell=lambda: None, commands=[], muted=True)


async def recorded(store: EventStore) -> float:
    base = time.time() - 30
    for event in fleet_events(base):
        await store.append(event)
    for worker_id in ("cpu-1", "cpu-2"):
        beat = Heartbeat(time.time(), cpu=42.0, memory=30.0, server=store.connected_to or "")
        await store.beat(worker_id, msgspec.json.encode(beat))
    return base


async def dashboard(nats_server: LocalServer) -> Dashboard:
    fleet = Fleet(started_at=time.time())
    feed = await Feed.connect([nats_server.url], fleet)
    return Dashboard(fleet, feed=feed, player=silent(), refresh_s=0.1)


def cells_of(table: LiveTable) -> list[str]:
    return [" ".join(str(c) for c in table.get_row_at(i)) for i in range(table.row_count)]


async def test_every_pane_and_drill_down(nats_server: LocalServer, store: EventStore):
    await recorded(store)
    app = await dashboard(nats_server)
    async with app.run_test(size=(120, 40)) as pilot:
        await eventually_async(lambda: app.fleet.caught_up and len(app.fleet.view.runs) == 2)
        await eventually_async(lambda: len(app.fleet.beats) == 2)
        # The alerts of the recorded incidents, most severe first, as notifications.
        await eventually_async(lambda: len(app.board.raised) >= 6)
        tiers = [a.tier for a in app.board.raised]
        assert "system-critical" in tiers  # no coordinator holds the lease here
        assert {"critical", "warning", "info"} <= set(tiers)

        await pilot.press("2")
        table = app.query_one("#workers-table", LiveTable)
        await eventually_async(lambda: table.row_count == 4)
        rows = cells_of(table)
        assert any(
            "gpu-1" in r and "quarantined" in r and "linux-32cpu-256gb-1xH100" in r for r in rows
        )
        # The filter keeps the rows with the text.
        await pilot.press("slash", *"quarantined", "enter")
        await eventually_async(lambda: table.row_count == 1)
        await pilot.press("slash", "escape")
        await eventually_async(lambda: table.row_count == 4)

        # A worker's drill-down, and a drain behind its confirmation.
        table.focus()
        table.move_cursor(row=[r.split()[0] for r in cells_of(table)].index("cpu-1"))
        await pilot.press("enter")
        await eventually_async(lambda: isinstance(app.screen, WorkerScreen))
        await pilot.press("d")
        await eventually_async(lambda: isinstance(app.screen, Confirm))
        await pilot.press("n")  # no: nothing recorded
        await eventually_async(lambda: isinstance(app.screen, WorkerScreen))
        await pilot.press("d")
        await eventually_async(lambda: isinstance(app.screen, Confirm))
        await pilot.press("y")

        async def drained() -> bool:
            history = await store.load(worker_subject("cpu-1"))
            return any("drain_requested" in r.subject for r in history)

        for _ in range(100):
            if await drained():
                break
            await pilot.pause(0.05)
        assert await drained()
        await pilot.press("escape")

        # Runs, then a run's tasks, then a task's audit trail and live output.
        await store.publish_note(log_subject("run-two.3"), b"collected 2 items\n")
        await pilot.press("3")
        runs = app.query_one("#runs-table", LiveTable)
        await eventually_async(lambda: runs.row_count == 2)
        runs.focus()
        runs.move_cursor(row=0)  # the newest: run-two
        await pilot.press("enter")
        await eventually_async(lambda: isinstance(app.screen, RunScreen))
        tasks = app.screen.query_one("#tasks-table", LiveTable)
        await eventually_async(lambda: tasks.row_count == 4)
        tasks.focus()
        tasks.move_cursor(row=3)
        await pilot.press("enter")
        await eventually_async(lambda: isinstance(app.screen, TaskScreen))
        trail = app.screen.query_one("#task-trail")
        output = app.screen.query_one("#task-output")
        await eventually_async(lambda: any("task.started" in line for line in trail.lines))
        await eventually_async(lambda: any("collected 2 items" in ln for ln in output.lines))
        await store.publish_note(log_subject("run-two.3"), b"tests/test_3.py ..\n")
        await eventually_async(lambda: any("test_3.py .." in ln for ln in output.lines))
        await pilot.press("escape", "escape")

        # Errors (live incidents, no read model), trends (says how to get one), topology.
        await pilot.press("4")
        recent = app.query_one("#errors-recent", LiveTable)
        await eventually_async(lambda: recent.row_count >= 6)
        await pilot.press("5")
        assert "no read model" in str(app.query_one("#trends-source").render())
        await pilot.press("6")
        tree = app.query_one("Topology")
        await eventually_async(lambda: "worker cpu-1" in _tree_text(tree))
        assert "this dashboard" in _tree_text(tree)

        # Help, sound keys, theme, and the coordinator showing up.
        await pilot.press("question_mark")
        await eventually_async(lambda: isinstance(app.screen, Help))
        await pilot.press("escape")
        await pilot.press("m")
        assert not app.player.muted
        await pilot.press("m", "minus")
        assert app.player.volume == 60
        dark = app.theme
        await pilot.press("t")
        assert app.theme != dark
        await pilot.press("1")


def _tree_text(tree) -> str:
    lines = []

    def walk(node) -> None:
        lines.append(str(node.label))
        for child in node.children:
            walk(child)

    walk(tree.root)
    return "\n".join(lines)


async def test_a_server_that_goes_away_shows_a_banner_and_comes_back(tmp_path):
    from dtf.nats.server import start_server

    server = start_server(store_dir=tmp_path / "js", log_file=tmp_path / "n.log", durable=True)
    try:
        app = await dashboard(server)
        async with app.run_test(size=(100, 30)):
            await eventually_async(lambda: app.fleet.caught_up)
            banner = app.query_one("#banner")
            server.stop()
            await eventually_async(lambda: banner.has_class("shown"), timeout=20)
            assert "reconnecting" in str(banner.render())
            server = start_server(
                store_dir=tmp_path / "js",
                log_file=tmp_path / "n.log",
                durable=True,
                port=int(server.url.rsplit(":", 1)[1]),
            )
            await eventually_async(lambda: not banner.has_class("shown"), timeout=30)
            assert app.is_running
    finally:
        server.stop()
