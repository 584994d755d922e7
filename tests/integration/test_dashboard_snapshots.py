"""SVG snapshots of the dashboard's main screens at 80x24, from the recorded fleet with a
fixed clock and time zone, compared with the files in `snapshots/` beside this test.

After a deliberate change of a screen, rerun with DTF_SNAPSHOT_UPDATE=1 and look at the SVGs
(e.g. in a browser) before committing them.  (pytest-textual-snapshot does this, but its
syrupy pins pytest below 9, whose subtests the run tests need.)"""

from __future__ import annotations

import os
import time
from pathlib import Path

import msgspec
import pytest

from events.api import Heartbeat
from tests.unit.test_dashboard_fleet import BASE, folded
from tui.alerts.player import Player
from tui.app import Dashboard

NOW = BASE + 30
SNAPSHOTS = Path(__file__).with_name("snapshots")


@pytest.fixture(autouse=True)
def utc(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def app() -> Dashboard:
    fleet = folded(started=BASE + 10_000)  # old history: no notifications over the screen
    fleet.lease("coord-a")
    for i, worker in enumerate(("cpu-1", "cpu-2")):
        for n in range(12):
            beat = Heartbeat(NOW - 1, cpu=float((n * 17 + i * 40) % 100), memory=30.0 + n)
            fleet.beat(worker, msgspec.json.encode(beat))
    fleet.caught_up = True
    player = Player(bell=lambda: None, commands=[], muted=True)
    return Dashboard(fleet, player=player, clock=lambda: NOW, refresh_s=60)


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        ("overview", ()),
        ("workers", ("2",)),
        ("runs", ("3",)),
        ("topology", ("6",)),
        ("help", ("question_mark",)),
    ],
)
async def test_main_screens(name: str, keys: tuple[str, ...]):
    dashboard = app()
    async with dashboard.run_test(size=(80, 24)) as pilot:
        await pilot.press(*keys)
        await pilot.pause(0.2)
        dashboard.tick()
        await pilot.pause(0.2)
        svg = dashboard.export_screenshot(title="dtf dashboard")
    path = SNAPSHOTS / f"{name}.svg"
    if os.environ.get("DTF_SNAPSHOT_UPDATE") or not path.exists():
        SNAPSHOTS.mkdir(exist_ok=True)
        path.write_text(svg)
        if not os.environ.get("DTF_SNAPSHOT_UPDATE"):
            pytest.fail(f"{path} was missing: written; look at it and commit it")
    assert svg == path.read_text(), f"{name} differs from {path} (DTF_SNAPSHOT_UPDATE=1 renews)"
