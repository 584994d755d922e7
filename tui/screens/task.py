"""One task: its state, its event history (the audit trail, judged as the coordinator judges
it) and a live tail of its output (the DTF_LOGS stream)."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Header, Log, Static

from dtf.errors import DtfError
from tui.feed import stop_quietly
from tui.fleet import Fleet
from tui.widgets import cells

OUTPUT_LINES = 2000  # the output pane keeps this many lines


class TaskScreen(Screen):
    """Pushed over a run's tasks; Escape goes back (and stops the tail)."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back")]
    DEFAULT_CSS = """
    TaskScreen #task-about { height: auto; padding: 0 1; }
    TaskScreen #task-trail { height: 1fr; border-top: solid $primary; }
    TaskScreen #task-output { height: 1fr; border-top: solid $accent; }
    """

    def __init__(self, task_id: str) -> None:
        super().__init__()
        self.task_id = task_id
        self._tail = None

    def compose(self):
        yield Header()
        yield Static(id="task-about")
        yield Log(id="task-trail", highlight=False)
        yield Log(id="task-output", highlight=False, max_lines=OUTPUT_LINES)
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"task {self.task_id}"
        self.show(self.app.fleet, self.app.now())  # type: ignore[attr-defined]
        self.run_worker(self._load(), group="task")

    async def _load(self) -> None:
        trail = self.query_one("#task-trail", Log)
        output = self.query_one("#task-output", Log)
        feed = self.app.feed  # type: ignore[attr-defined]
        if feed is None:
            trail.write_line("(no server: the audit trail is read from the stream)")
            return
        try:
            lines = await feed.task_trail(self.task_id)
            trail.write_line(f"audit trail of {self.task_id} ({len(lines)} events):")
            trail.write_lines(lines)
            output.write_line(f"output of {self.task_id} (live):")
            self._tail = await feed.tail_output(
                self.task_id, lambda data: output.write(data.decode(errors="replace"))
            )
        except DtfError as exc:
            trail.write_line(f"cannot read the task: {exc}")

    async def on_unmount(self) -> None:
        await stop_quietly(self._tail)

    def show(self, fleet: Fleet, now: float) -> None:
        task = fleet.view.tasks.get(self.task_id)
        about = self.query_one("#task-about", Static)
        if task is None:
            about.update(f"no task {self.task_id} is in the stream")
            return
        what = (
            " ".join(task.spec.argv)
            if task.spec.kind == "command"
            else (f"{len(task.spec.nodeids)} test(s): " + ", ".join(task.spec.nodeids[:3]))
        )
        text = Text.assemble(
            cells.status(task.status),
            f"  attempt {task.attempt or '-'} on {task.worker_id or '-'}  ",
            (what[:200], "dim"),
        )
        if task.message:
            text.append(f"\n{task.category}: {task.message[:500]}", style="red")
        if task.started_at:
            took = (task.finished_at or now) - task.started_at
            text.append(f"\nran for {cells.duration(took)}")
        about.update(text)
