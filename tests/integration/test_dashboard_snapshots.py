"""SVG snapshots of the dashboard's main screens at 80x24, from the recorded fleet with a
fixed clock and time zone (rendered by pytest-textual-snapshot; `--snapshot-update` after a
deliberate change, then look at the SVGs under __snapshots__/ before committing them)."""

from __future__ import annotations

import time

import msgspec
import pytest

from events.api import Heartbeat
from tests.unit.test_dashboard_fleet import BASE, folded
from tui.alerts.player import Player
from tui.app import Dashboard

NOW = BASE + 30


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


@pytest.mark.parametrize("keys", [(), ("2",), ("3",), ("6",), ("question_mark",)])
def test_main_screens(snap_compare, keys):
    assert snap_compare(app(), press=keys, terminal_size=(80, 24))
