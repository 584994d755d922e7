"""The live progress display of `dtf run`: tests done / total, failures, what each worker runs.

Drawn with rich only on a terminal; elsewhere (CI logs, pipes) it prints nothing while
running, so logs hold the summary and not a thousand redraws.
"""

from __future__ import annotations

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from dtf.core.state import View
from events.catalogue import AnyEvent, TaskCompleted, TaskFailed


class RunProgress:
    """Owns the rich Live display; `update` runs after every event of the run."""

    def __init__(self, console: Console, total: int, *, enabled: bool, count_cases: bool) -> None:
        self.enabled = enabled and console.is_terminal
        self.count_cases = count_cases
        self.done = 0
        self.failures = 0
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[failures]}"),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.bar.add_task(
            "tests" if count_cases else "commands", total=total, failures=""
        )
        self.workers = Table.grid(padding=(0, 2))
        self.live = (
            Live(
                Group(self.bar, self.workers),
                console=console,
                refresh_per_second=8,
                transient=False,
            )
            if self.enabled
            else None
        )

    def __enter__(self) -> RunProgress:
        if self.live is not None:
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.__exit__(None, None, None)

    def update(self, view: View, run_id: str, event: AnyEvent) -> None:
        if isinstance(event, TaskCompleted | TaskFailed):
            cases = event.cases
            step = len(cases) if self.count_cases else 1
            bad = sum(1 for c in cases if c.outcome in ("failed", "error"))
            if isinstance(event, TaskFailed) and not cases:
                bad = 1
            self.done += step
            self.failures += bad
        if not self.enabled:
            return
        label = f"[red]{self.failures} failed[/]" if self.failures else ""
        self.bar.update(self.task, completed=self.done, failures=label)
        table = Table.grid(padding=(0, 2))
        running = [t for t in view.tasks_of(run_id) if t.status in ("assigned", "running")]
        for task in sorted(running, key=lambda t: t.worker_id)[:16]:
            what = task.spec.nodeids[0] if task.spec.nodeids else " ".join(task.spec.argv)
            more = f" (+{len(task.spec.nodeids) - 1})" if len(task.spec.nodeids) > 1 else ""
            table.add_row(f"[cyan]{task.worker_id}[/]", f"{task.status}", f"{what}{more}")
        assert self.live is not None
        self.live.update(Group(self.bar, table))
