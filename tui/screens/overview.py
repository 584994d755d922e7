"""The overview: the fleet's census, the queue and its pace, who leads, the servers' health,
the runs in progress with their progress and ETA, and the latest alerts."""

from __future__ import annotations

from rich.console import Group
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from tui.alerts.rules import Alert
from tui.fleet import Fleet
from tui.widgets import cells

RUNS_SHOWN = 8
ALERTS_SHOWN = 6


class Overview(VerticalScroll):
    """Shows the fleet at a glance; the app calls `show` on every refresh."""

    DEFAULT_CSS = """
    Overview { padding: 0 1; }
    Overview > Static { margin-bottom: 1; }
    """

    def compose(self):
        yield Static(id="census")
        yield Static(id="control")
        yield Static(id="runs-now")
        yield Static(id="alerts-now")

    def show(self, fleet: Fleet, alerts: list[Alert], now: float) -> None:
        self.query_one("#census", Static).update(census(fleet, now))
        self.query_one("#control", Static).update(control(fleet))
        self.query_one("#runs-now", Static).update(runs(fleet, now))
        self.query_one("#alerts-now", Static).update(latest_alerts(alerts, now))


def census(fleet: Fleet, now: float) -> Table:
    c = fleet.census(now)
    grid = Table.grid(padding=(0, 2))
    for _ in range(4):
        grid.add_column()
    late = Text(f" ({c.late} late)", style="yellow") if c.late else ""
    grid.add_row(
        Text.assemble(("workers ", "bold"), (f"{c.up} up", "green"), late),
        Text(f"{c.busy} busy", style="bold green" if c.busy else "dim"),
        Text(f"{c.draining} draining", style="yellow" if c.draining else "dim"),
        Text(f"{c.quarantined} quarantined", style="bold red" if c.quarantined else "dim"),
    )
    grid.add_row(
        Text(f"{c.lost} lost", style="red" if c.lost else "dim"),
        Text(f"{c.disabled} disabled", style="magenta" if c.disabled else "dim"),
        Text.assemble(("queue ", "bold"), str(fleet.queue_depth())),
        Text(f"{fleet.running()} running · {fleet.tests_per_second(now):.1f} tests/s"),
    )
    return grid


def control(fleet: Fleet) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column()
    if fleet.leader:
        term = f" (term {fleet.term})" if fleet.term else ""
        leader = Text(f"{fleet.leader}{term}", style="green")
    elif fleet.leader_known:
        leader = Text("none leads: start one with dtf coordinator", style="bold red")
    else:
        leader = Text("reading the lease…", style="dim")
    grid.add_row("coordinator", leader)
    servers = Text()
    for address, health in sorted(fleet.servers.items()):
        servers.append(f"{address} ", style="bold")
        servers.append("ok" if health.ok else health.detail, style="green" if health.ok else "red")
        servers.append("  ")
    grid.add_row("servers", servers if servers.plain else Text("probing…", style="dim"))
    stream = f"{fleet.view.last_seq} events"
    if not fleet.caught_up:
        stream += " (catching up…)"
    if fleet.view.rejected:
        stream += f", {fleet.view.rejected} rejected"
    grid.add_row("stream", Text(stream, style="red" if fleet.view.rejected else ""))
    return grid


def runs(fleet: Fleet, now: float) -> Table | Text:
    active = [r for r in fleet.runs(now) if not r.finished]
    if not active:
        done = len(fleet.view.runs)
        return Text(f"no run in progress ({done} finished)", style="dim")
    table = Table(title="runs in progress", title_justify="left", box=None, expand=True)
    for name in ("run", "progress", "tasks", "tests", "elapsed", "eta"):
        table.add_column(name, no_wrap=True, ratio=2 if name == "progress" else None)
    for row in active[:RUNS_SHOWN]:
        table.add_row(
            row.run_id,
            ProgressBar(total=max(1, row.tasks), completed=row.tasks_done),
            f"{row.tasks_done}/{row.tasks}",
            cells.counts(row.counts),
            cells.duration(row.elapsed),
            cells.duration(row.eta),
        )
    if len(active) > RUNS_SHOWN:
        table.caption = f"and {len(active) - RUNS_SHOWN} more (press 3)"
    return table


def latest_alerts(alerts: list[Alert], now: float) -> Group | Text:
    if not alerts:
        return Text("no alerts", style="dim")
    lines = [Text("latest alerts", style="bold")]
    for alert in alerts[-ALERTS_SHOWN:][::-1]:
        lines.append(
            Text.assemble(
                (cells.clock(alert.at, now) + " ", "dim"),
                cells.tier(alert.tier),
                " ",
                alert.title,
                (f"  {alert.detail}" if alert.detail else "", "dim"),
                no_wrap=True,
                overflow="ellipsis",
            )
        )
    return Group(*lines)
