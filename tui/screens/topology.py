"""Topology: the NATS servers and their health, and who is connected to which — workers (their
heartbeats say), this dashboard — and the coordinators, the leader marked."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Tree

from tui.fleet import Fleet

UNKNOWN = "(server not reported)"


def layout(fleet: Fleet, dashboard_on: str | None) -> tuple:
    """What the tree shows, as plain values (the tree is rebuilt only when this changes)."""
    by_server: dict[str, list[str]] = {address: [] for address in fleet.servers}
    for worker_id in sorted(fleet.beats):
        state = fleet.view.workers.get(worker_id)
        if state is not None and state.status in ("stopped", "lost"):
            continue
        server = fleet.beats[worker_id].server or UNKNOWN
        by_server.setdefault(server, []).append(worker_id)
    servers = tuple(
        (
            address,
            fleet.servers[address].ok if address in fleet.servers else None,
            fleet.servers[address].detail if address in fleet.servers else "",
            tuple(workers),
            address == dashboard_on,
        )
        for address, workers in sorted(by_server.items())
    )
    coordinators = tuple(
        (actor, term, actor == fleet.leader) for actor, term in sorted(fleet.terms.items())
    )
    if fleet.leader and fleet.leader not in fleet.terms:
        coordinators += ((fleet.leader, 0, True),)
    return servers, coordinators


class Topology(Tree):
    """The tree of servers, their clients, and the coordinators."""

    def __init__(self, **kwargs) -> None:
        super().__init__("fleet", **kwargs)
        self._shown: tuple | None = None
        self.show_root = False

    def show(self, fleet: Fleet, dashboard_on: str | None) -> None:
        shape = layout(fleet, dashboard_on)
        if shape == self._shown:
            return
        self._shown = shape
        servers, coordinators = shape
        self.clear()
        top = self.root.add(Text("NATS servers", style="bold"), expand=True)
        for address, ok, detail, workers, mine in servers:
            style = "green" if ok else "red" if ok is False else "dim"
            label = Text.assemble((address, "bold"), "  ", (detail or "?", style))
            node = top.add(label, expand=True)
            if mine:
                node.add_leaf(Text("this dashboard", style="italic"))
            for worker_id in workers:
                node.add_leaf(f"worker {worker_id}")
        lead = self.root.add(Text("coordinators", style="bold"), expand=True)
        if not coordinators:
            lead.add_leaf(Text("none seen", style="dim"))
        for actor, term, leads in coordinators:
            tag = Text(" leads", style="bold green") if leads else Text(" not leading", style="dim")
            lead.add_leaf(Text.assemble(actor, f" (term {term})" if term else "", tag))
