"""The workers table: hardware, load with sparklines, slots, heartbeat, tasks, failure streak.
Enter opens one worker (`tui.screens.worker`)."""

from __future__ import annotations

from textual.containers import Vertical

from tui.fleet import Fleet, WorkerRow
from tui.screens.opened import Opened
from tui.widgets import cells
from tui.widgets.filter import FilterBar
from tui.widgets.table import LiveTable, Row

COLUMNS = (
    "worker",
    "status",
    "busy",
    "beat",
    "cpu",
    "cpu %",
    "mem %",
    "task",
    "streak",
    "hardware",
    "gpus",
)


def worker_row(w: WorkerRow) -> Row:
    return (
        w.worker_id,
        (
            w.worker_id,
            cells.status(w.status),
            f"{w.busy}/{w.slots}",
            cells.age(w.beat_age),
            str(w.cpus),
            cells.spark(w.cpu, 10),
            cells.spark(w.memory, 10),
            w.tasks[0] + (f" +{len(w.tasks) - 1}" if len(w.tasks) > 1 else "") if w.tasks else "-",
            str(w.streak) if w.streak else "",
            w.hardware,
            str(w.gpus) if w.gpus else "",
        ),
    )


class Workers(Vertical):
    """The table of every worker that has not stopped."""

    def compose(self):
        yield FilterBar(id="workers-filter")
        yield LiveTable(COLUMNS, id="workers-table")

    def show(self, fleet: Fleet, now: float) -> None:
        table = self.query_one(LiveTable)
        table.filter_text = self.query_one(FilterBar).value
        table.sync([worker_row(w) for w in fleet.workers(now)])

    def on_data_table_row_selected(self, event: LiveTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value:
            self.post_message(Opened("worker", event.row_key.value))
