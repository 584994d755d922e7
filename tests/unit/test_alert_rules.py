"""The alert rules, each a pure function of the folded fleet, and the board that raises each
condition once."""

from __future__ import annotations

from dtf.nats.health import ServerHealth
from events.records import Rejected
from tests.unit.test_dashboard_fleet import BASE, folded
from tui.alerts import rules
from tui.alerts.rules import Board, Condition, conditions


def test_a_quiet_fleet_raises_nothing():
    fleet = folded(started=BASE + 10_000)  # all of it is old history
    fleet.lease("coord-a")
    assert conditions(fleet, BASE + 10_000) == []


def test_each_incident_gets_its_tier():
    fleet = folded()
    fleet.lease("coord-a")
    found = conditions(fleet, BASE + 30)
    assert sorted(c.tier for c in found) == [
        "critical",
        "critical",
        "critical",
        "info",
        "warning",
        "warning",
    ]
    by_title = {c.title: c.tier for c in found}
    assert by_title["task run-two.1 failed (timeout) on old-1"] == "warning"
    assert by_title["task run-two.2 failed (infrastructure) on gpu-1"] == "critical"
    assert by_title["worker old-1 lost"] == "critical"
    assert by_title["tests failed in run-one.1"] == "info"


def test_system_critical_conditions():
    fleet = folded(started=BASE + 10_000)
    assert list(rules.no_leader(fleet, BASE)) == []  # the lease not read yet
    fleet.lease(None)
    assert [c.tier for c in rules.no_leader(fleet, BASE)] == ["system-critical"]
    fleet.connection(False, BASE)
    assert list(rules.no_leader(fleet, BASE)) == []  # unknown while disconnected
    assert [c.tier for c in rules.connection_lost(fleet, BASE + 5)] == ["warning"]
    fleet.servers = {
        "a:1": ServerHealth("a:1", True, "nats-server", BASE),
        "b:2": ServerHealth("b:2", False, "down (ConnectionRefusedError)", BASE),
    }
    down = list(rules.servers_down(fleet, BASE))
    assert [(c.tier, c.key) for c in down] == [("system-critical", "server-down:b:2")]
    fleet.fold(Rejected(77, "dtf.evt.task.r.0.completed", "signed by an unknown key", BASE + 9999))
    assert [c.key for c in rules.refused_messages(fleet, BASE)] == ["rejected:77"]
    fleet.history_problem = "dtf.duckdb is not a dtf read model"
    assert [c.tier for c in rules.read_model_broken(fleet, BASE)] == ["system-critical"]


def test_the_board_raises_a_condition_once_and_again_after_it_cleared():
    board = Board()
    no_leader = Condition("system-critical", "no-leader", "no coordinator leads")
    test = Condition("info", "tests:5", "tests failed")
    assert [a.key for a in board.update([test, no_leader], 1.0)] == ["no-leader", "tests:5"]
    assert board.update([test, no_leader], 2.0) == []
    assert board.update([test], 3.0) == []
    assert [a.at for a in board.update([test, no_leader], 4.0)] == [4.0]
    assert [a.key for a in board.raised] == ["no-leader", "tests:5", "no-leader"]
