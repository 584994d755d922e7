"""One worker: what it is, its load over the last minute, what it runs, its errors and its
history; drain, enable and disable it (each behind a confirmation, as `dtf worker` records)."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Sparkline, Static

from dtf.errors import DtfError
from tui.fleet import Fleet
from tui.screens.confirm import Confirm
from tui.widgets import cells


class WorkerScreen(Screen):
    """Pushed over the workers table; Escape goes back."""

    DEFAULT_CSS = """
    WorkerScreen #about { height: auto; padding: 0 1; }
    WorkerScreen Horizontal { height: 4; }
    WorkerScreen Sparkline { width: 1fr; margin: 0 1; }
    WorkerScreen .label { width: 8; padding-left: 1; }
    WorkerScreen #trail { height: 1fr; border-top: solid $primary; }
    """
    BINDINGS = [
        Binding("escape", "app.pop_screen", "Back"),
        Binding("d", "act('drain')", "Drain"),
        Binding("e", "act('enable')", "Enable"),
        Binding("x", "act('disable')", "Disable"),
    ]

    def __init__(self, worker_id: str) -> None:
        super().__init__()
        self.worker_id = worker_id

    def compose(self):
        yield Header()
        with VerticalScroll(id="top"):
            yield Static(id="about")
            with Horizontal():
                yield Static("cpu %", classes="label")
                yield Sparkline([], id="cpu-spark")
                yield Static("mem %", classes="label")
                yield Sparkline([], id="mem-spark")
            yield Static(id="errors")
        yield Log(id="trail", highlight=False)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"worker {self.worker_id}"
        self.show(self.app.fleet, self.app.now())  # type: ignore[attr-defined]
        self.run_worker(self._load_trail(), group="trail")

    async def _load_trail(self) -> None:
        log = self.query_one("#trail", Log)
        feed = self.app.feed  # type: ignore[attr-defined]
        if feed is None:
            log.write_line("(no server: history is read from the stream)")
            return
        try:
            lines = await feed.worker_trail(self.worker_id)
        except DtfError as exc:
            log.write_line(f"cannot read the history: {exc}")
            return
        log.write_line(f"history of worker {self.worker_id} ({len(lines)} events):")
        log.write_lines(lines)

    def show(self, fleet: Fleet, now: float) -> None:
        state = fleet.view.workers.get(self.worker_id)
        about = self.query_one("#about", Static)
        if state is None:
            about.update(Text(f"no worker {self.worker_id} has registered", style="red"))
            return
        row = next((w for w in fleet.workers(now) if w.worker_id == self.worker_id), None)
        caps = state.registered.capabilities
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold")
        grid.add_column()
        shown = row.status if row else state.status
        grid.add_row("status", Text.assemble(cells.status(shown), f"  {state.reason}"))
        grid.add_row(
            "machine",
            f"{caps.hostname} · {caps.platform} · {caps.cpus} cpus · {caps.memory_gb:g} GB"
            + "".join(f" · {g.name or g.vendor} {g.memory_gb:g} GB" for g in caps.gpus),
        )
        grid.add_row("python", caps.python or "-")
        grid.add_row("labels", ", ".join(caps.labels) or "-")
        beat = fleet.beats.get(self.worker_id)
        grid.add_row(
            "slots",
            f"{len(row.tasks) if row else 0}/{state.slots} busy · heartbeat "
            + cells.age(row.beat_age if row else None)
            + (f" · via {beat.server}" if beat and beat.server else ""),
        )
        grid.add_row("running", ", ".join(row.tasks) if row and row.tasks else "-")
        grid.add_row("failures", f"{fleet.view.infra_streak.get(self.worker_id, 0)} in a row")
        about.update(grid)
        self.query_one("#cpu-spark", Sparkline).data = list(fleet.cpu.get(self.worker_id, ()))
        self.query_one("#mem-spark", Sparkline).data = list(fleet.memory.get(self.worker_id, ()))
        mine = [i for i in fleet.incidents if i.worker == self.worker_id][-5:]
        errors = Text("errors: none seen", style="dim")
        if mine:
            errors = Text("latest errors\n", style="bold")
            for i in reversed(mine):
                errors.append(f"{cells.clock(i.at, now)} {i.kind} {i.ident} ", style="")
                errors.append(f"{i.category}: {i.message[:120]}\n", style="red")
        self.query_one("#errors", Static).update(errors)

    def action_act(self, action: str) -> None:
        feed = self.app.feed  # type: ignore[attr-defined]
        if feed is None:
            self.notify("not connected to a server", severity="error")
            return

        async def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                await feed.act(action, self.worker_id)
            except DtfError as exc:
                self.notify(str(exc), title=f"{action} failed", severity="error")
                return
            self.notify(f"{action}: recorded for worker {self.worker_id}", title="done")

        self.app.push_screen(Confirm(f"{action.capitalize()} worker {self.worker_id}?"), answered)
