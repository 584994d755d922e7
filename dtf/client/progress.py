"""The live progress display of `dtf run`: tests done / total, counts, what each worker runs.

The counts use the categories, words and colours of the final summary line ("4 failed,
1 error"), counted the way the summary counts them.

Drawn with rich only on a terminal; elsewhere (CI logs, pipes) it prints nothing while
running, so logs hold the summary and not a thousand redraws, unless asked for plain lines
(`dtf ci`): then one line every `plain_every` seconds and one at the end.
"""

from __future__ import annotations

import time
from collections import Counter

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from dtf.client.summary import counts_text
from dtf.core.outcomes import count, pytest_counts
from dtf.core.state import TaskState, View
from events.catalogue import AnyEvent, CaseProgress, CaseResult


def task_outcomes(task: TaskState, *, count_cases: bool) -> Counter[str]:
    """What a finished task adds to the run's counts, counted as the final line counts.

    A command task counts as one case, as `dtf.client.run.RunClient._command_case` reports it: the
    outcome of its result when it completed, else an error.
    """
    if not task.terminal:
        return Counter()
    if count_cases:
        return Counter(pytest_counts(task.cases))
    if task.status == "completed" and task.cases:
        return Counter(count(task.cases[:1]))
    return Counter(count([CaseResult(task.task_id, "error")]))


class RunProgress:
    """Owns the rich Live display; `update` runs after every event of the run."""

    def __init__(
        self,
        console: Console,
        total: int,
        *,
        enabled: bool,
        count_cases: bool,
        plain_every: float | None = None,
    ) -> None:
        self.enabled = enabled and console.is_terminal
        self.console = console
        self.total = total
        # Plain lines instead of the live display, when it is off for want of a terminal.
        self.plain_every = plain_every if enabled and not console.is_terminal else None
        self._last_line = time.monotonic()
        self._started = self._last_line
        self.count_cases = count_cases
        # Counted from the View's task states, as the summary counts them: a retried attempt
        # or a speculative twin's result replaces what its task counted before.
        self.counts: Counter[str] = Counter()
        self.done = 0  # cases (or commands) with a result, for the bar
        self._by_task: dict[str, tuple[Counter[str], int]] = {}
        self._precollected_counted = False
        self.bar = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self.task = self.bar.add_task("tests" if count_cases else "commands", total=total)
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

    def case_done(self, view: View, note: CaseProgress) -> None:
        """Runs when a worker reports one test's result, before its task ends.

        Counted provisionally for the task's attempt: when the task ends (or its attempt is
        given up on) `update` replaces whatever its notes added with what the View says.
        """
        task = view.tasks.get(note.task_id)
        if task is None or note.attempt not in task.live_attempts or not self.count_cases:
            return
        before, done_before = self._by_task.get(note.task_id, (Counter(), 0))
        self.counts[note.outcome] += 1
        self._by_task[note.task_id] = (before + Counter({note.outcome: 1}), done_before + 1)
        self.done += 1
        self._redraw(view, task.spec.run_id)

    def update(self, view: View, run_id: str, event: AnyEvent) -> None:
        """Runs after every event of the run has been folded into `view`."""
        run = view.runs.get(run_id)
        if run is not None and not self._precollected_counted:
            # Module-level skips and tests no worker here can run are results from the start.
            self.counts.update(pytest_counts(run.submitted.precollected))
            self.done += len(run.submitted.precollected)
            self._precollected_counted = True
        task = view.tasks.get(getattr(event, "task_id", ""))
        if task is not None:
            before, done_before = self._by_task.pop(task.task_id, (Counter(), 0))
            self.counts.subtract(before)
            now = task_outcomes(task, count_cases=self.count_cases)
            done = 0
            if task.terminal:
                done = len(task.cases) if self.count_cases else 1
            self.counts.update(now)
            self.done += done - done_before
            self._by_task[task.task_id] = (now, done)
        self._redraw(view, run_id)

    def _redraw(self, view: View, run_id: str) -> None:
        if self.plain_every is not None:
            self._plain_line(self.plain_every)
        if not self.enabled:
            return
        self.bar.update(self.task, completed=self.done)
        table = Table.grid(padding=(0, 2))
        running = [t for t in view.tasks_of(run_id) if t.status in ("assigned", "running")]
        for busy in sorted(running, key=lambda t: t.worker_id)[:16]:
            what = busy.spec.nodeids[0] if busy.spec.nodeids else " ".join(busy.spec.argv)
            more = f" (+{len(busy.spec.nodeids) - 1})" if len(busy.spec.nodeids) > 1 else ""
            table.add_row(f"[cyan]{busy.worker_id}[/]", f"{busy.status}", f"{what}{more}")
        assert self.live is not None
        self.live.update(Group(self.bar, self.counts_line(), table))

    def _plain_line(self, every: float) -> None:
        now = time.monotonic()
        if now - self._last_line < every and self.done < self.total:
            return
        if self.done >= self.total:
            self.plain_every = None  # the last line is said once
        self._last_line = now
        counts = self.counts_line().plain or "no results yet"
        noun = "tests" if self.count_cases else "commands"
        self.console.print(
            f"progress: {self.done}/{self.total} {noun}, {counts}, {now - self._started:.0f}s",
            markup=False,
            highlight=False,
        )

    def counts_line(self) -> Text:
        """The counts so far, on their own line (they outgrow the bar's): "2 failed, 9 passed"."""
        return counts_text(+self.counts)
