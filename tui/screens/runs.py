"""Every run with its counts and duration; Enter opens its tasks (`RunScreen`), and Enter on
a task its audit trail and output (`tui.screens.task`)."""

from __future__ import annotations

from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import Footer, Header, Static

from tui.fleet import Fleet, RunRow
from tui.screens.opened import Opened
from tui.widgets import cells
from tui.widgets.filter import FilterBar
from tui.widgets.table import LiveTable, Row

RUN_COLUMNS = ("run", "state", "tasks", "tests", "submitted", "duration", "eta")
TASK_COLUMNS = ("task", "status", "worker", "attempt", "tests", "took", "category", "message")


def run_row(r: RunRow, now: float) -> Row:
    state = "cancelled" if r.cancelled else "completed" if r.finished else "running"
    failed = r.counts.get("failed", 0) + r.counts.get("error", 0)
    if r.finished and failed:
        state = "failed"
    return (
        r.run_id,
        (
            r.run_id,
            cells.status(state),
            f"{r.tasks_done}/{r.tasks}",
            cells.counts(r.counts),
            cells.clock(r.submitted_at, now),
            cells.duration(r.elapsed),
            cells.duration(r.eta),
        ),
    )


class Runs(Vertical):
    """The table of runs, the newest first."""

    def compose(self):
        yield FilterBar(id="runs-filter")
        yield LiveTable(RUN_COLUMNS, id="runs-table")

    def show(self, fleet: Fleet, now: float) -> None:
        table = self.query_one(LiveTable)
        table.filter_text = self.query_one(FilterBar).value
        table.sync([run_row(r, now) for r in fleet.runs(now)])

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(Opened("run", event.row_key.value))


class RunScreen(Screen):
    """One run's tasks, live."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = "RunScreen #run-about { height: auto; padding: 0 1; }"

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id

    def compose(self):
        yield Header()
        yield Static(id="run-about")
        yield FilterBar(id="tasks-filter")
        yield LiveTable(TASK_COLUMNS, id="tasks-table")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"run {self.run_id}"
        self.show(self.app.fleet, self.app.now())  # type: ignore[attr-defined]

    def show(self, fleet: Fleet, now: float) -> None:
        run = fleet.view.runs.get(self.run_id)
        about = self.query_one("#run-about", Static)
        if run is None:
            about.update(f"no run {self.run_id} is in the stream")
            return
        labels = " ".join(f"{k}={v}" for k, v in sorted(run.submitted.labels.items()))
        about.update(
            f"{run.submitted.root or '-'}  {' '.join(run.submitted.args)}  {labels}".strip()
        )
        rows = []
        for t in fleet.tasks_of(self.run_id):
            took = (t.finished_at or now) - t.started_at if t.started_at else None
            outcomes: dict[str, int] = {}
            for case in t.cases:
                outcomes[case.outcome] = outcomes.get(case.outcome, 0) + 1
            rows.append(
                (
                    t.task_id,
                    (
                        t.task_id,
                        cells.status(t.status),
                        t.worker_id or "-",
                        str(t.attempt or "-"),
                        cells.counts(outcomes) if t.cases else str(len(t.spec.nodeids) or "-"),
                        cells.duration(took),
                        t.category,
                        t.message.splitlines()[0][:80] if t.message else "",
                    ),
                )
            )
        table = self.query_one(LiveTable)
        table.filter_text = self.query_one(FilterBar).value
        table.sync(rows)

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(Opened("task", event.row_key.value))
