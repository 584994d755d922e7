"""The alert rules: each a small pure function of the folded fleet and the time, returning the
conditions that hold now.  `Board` turns conditions into alerts: a condition raises an alert
when it first holds, and may raise one again only after it stopped holding.

Tiers (the seed's): system-critical — no leading coordinator, a NATS server down, the stream
or the read model unreadable, a message refused for its signature or signer; critical — a
worker lost or quarantined, hardware, environment or resource failures; warning — the
dashboard's own connection (network), timeouts, cleanup (late results of abandoned attempts);
info — test failures.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from tui.alerts.tiers import Tier
from tui.fleet import Fleet

ALERTS_KEPT = 100


@dataclass(frozen=True, slots=True)
class Condition:
    """Something alert-worthy that holds now; `key` names it so it alerts once."""

    tier: Tier
    key: str
    title: str
    detail: str = ""


@dataclass(frozen=True, slots=True)
class Alert:
    tier: Tier
    key: str
    title: str
    detail: str
    at: float


Rule = Callable[[Fleet, float], Iterable[Condition]]


def no_leader(fleet: Fleet, now: float) -> Iterable[Condition]:
    if fleet.connected and fleet.leader_known and fleet.leader is None:
        yield Condition(
            "system-critical",
            "no-leader",
            "no coordinator leads",
            "nothing is scheduled; start one: dtf coordinator --server URL",
        )


def servers_down(fleet: Fleet, now: float) -> Iterable[Condition]:
    for health in fleet.servers.values():
        if not health.ok:
            yield Condition(
                "system-critical",
                f"server-down:{health.address}",
                f"NATS server {health.address} is down",
                health.detail,
            )


def refused_messages(fleet: Fleet, now: float) -> Iterable[Condition]:
    """Every fresh message the stream holds that no reader accepts: forged, or corrupt."""
    for incident in fleet.incidents:
        if incident.kind == "rejected" and fleet.fresh(incident.at):
            yield Condition(
                "system-critical",
                f"rejected:{incident.seq}",
                f"message {incident.seq} rejected",
                f"{incident.ident}: {incident.message}",
            )


def read_model_broken(fleet: Fleet, now: float) -> Iterable[Condition]:
    if fleet.history_problem:
        yield Condition(
            "system-critical", "read-model", "the read model is unreadable", fleet.history_problem
        )


def workers_down(fleet: Fleet, now: float) -> Iterable[Condition]:
    for incident in fleet.incidents:
        if incident.kind in ("worker.lost", "worker.quarantined") and fleet.fresh(incident.at):
            verb = "lost" if incident.kind == "worker.lost" else "quarantined"
            yield Condition(
                "critical",
                f"{incident.kind}:{incident.seq}",
                f"worker {incident.ident} {verb}",
                incident.message,
            )


# Failure categories by the tier their alert gets (`test` failures are info; cancellations
# are someone's decision, not an alert).
_TASK_TIERS: dict[str, Tier] = {
    "infrastructure": "critical",  # a worker or its pytest process crashed, memory ran out
    "environment": "critical",  # the machine cannot run it: interpreter, hardware, resources
    "timeout": "warning",
    "internal": "warning",
}


def task_failures(fleet: Fleet, now: float) -> Iterable[Condition]:
    for incident in fleet.incidents:
        tier = _TASK_TIERS.get(incident.category)
        if incident.kind != "task.failed" or tier is None or not fleet.fresh(incident.at):
            continue
        where = f" on {incident.worker}" if incident.worker else ""
        yield Condition(
            tier,
            f"task:{incident.seq}",
            f"task {incident.ident} failed ({incident.category}){where}",
            incident.message,
        )


def cleanup(fleet: Fleet, now: float) -> Iterable[Condition]:
    for incident in fleet.incidents:
        if incident.kind == "task.superseded" and fleet.fresh(incident.at):
            yield Condition(
                "warning",
                f"superseded:{incident.seq}",
                f"late result of task {incident.ident} from {incident.worker}",
                incident.message,
            )


def connection_lost(fleet: Fleet, now: float) -> Iterable[Condition]:
    if not fleet.connected:
        yield Condition(
            "warning",
            "disconnected",
            "the dashboard lost its server",
            f"reconnecting for {now - fleet.disconnected_at:.0f}s",
        )


def test_failures(fleet: Fleet, now: float) -> Iterable[Condition]:
    for incident in fleet.incidents:
        if incident.kind == "tests.failed" and fleet.fresh(incident.at):
            yield Condition(
                "info",
                f"tests:{incident.seq}",
                f"tests failed in {incident.ident}",
                incident.message,
            )


RULES: tuple[Rule, ...] = (
    no_leader,
    servers_down,
    refused_messages,
    read_model_broken,
    workers_down,
    task_failures,
    cleanup,
    connection_lost,
    test_failures,
)


def conditions(fleet: Fleet, now: float, rules: Iterable[Rule] = RULES) -> list[Condition]:
    return [c for rule in rules for c in rule(fleet, now)]


@dataclass
class Board:
    """Owns which conditions hold (so each alerts once) and the latest alerts raised."""

    holding: set[str] = field(default_factory=set)
    raised: deque[Alert] = field(default_factory=lambda: deque(maxlen=ALERTS_KEPT))

    def update(self, found: Iterable[Condition], now: float) -> list[Alert]:
        """The alerts for conditions that hold now and did not before, most severe first."""
        found = list(found)
        new = [
            Alert(c.tier, c.key, c.title, c.detail, now) for c in found if c.key not in self.holding
        ]
        self.holding = {c.key for c in found}
        new.sort(key=lambda a: _SEVERITY[a.tier])
        self.raised.extend(new)
        return new


_SEVERITY: dict[str, int] = {"system-critical": 0, "critical": 1, "warning": 2, "info": 3}
