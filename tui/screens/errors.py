"""Errors: counts by category and severity over 1 h / 6 h / 24 h / 7 d, the recurring patterns
(the fingerprints of `dtf errors`), the breakdown per worker and per hardware class, and the
context of one error (Enter on a recent one).  History comes from the read model
(`tui.history`); without one the pane says how to get it and shows what happened live."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.containers import Horizontal, Vertical
from textual.widgets import Static

from tui.fleet import Fleet
from tui.history import HistorySnapshot
from tui.widgets import cells
from tui.widgets.table import LiveTable

RECENT_COLUMNS = ("when", "category", "severity", "worker", "test", "message")
PATTERN_COLUMNS = ("count", "last seen", "categories", "workers", "example")


class Errors(Vertical):
    """The errors pane; `show` is called on every refresh, `history` when one is read."""

    DEFAULT_CSS = """
    Errors #errors-source { height: auto; padding: 0 1; color: $text-muted; }
    Errors #errors-top { height: auto; max-height: 12; }
    Errors #errors-windows { width: 2fr; padding: 0 1; }
    Errors #errors-where { width: 1fr; padding: 0 1; }
    Errors LiveTable { height: 1fr; }
    Errors #errors-context { height: auto; max-height: 8; padding: 0 1; border-top: solid $error; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.snapshot: HistorySnapshot | None = None
        self._recent: dict[str, object] = {}

    def compose(self):
        yield Static("reading the read model…", id="errors-source")
        with Horizontal(id="errors-top"):
            yield Static(id="errors-windows")
            yield Static(id="errors-where")
        yield LiveTable(PATTERN_COLUMNS, id="errors-patterns")
        yield LiveTable(RECENT_COLUMNS, id="errors-recent")
        yield Static(id="errors-context")

    def show(self, fleet: Fleet, now: float) -> None:
        snapshot = self.snapshot
        recent = self.query_one("#errors-recent", LiveTable)
        if snapshot is None or snapshot.errors is None:
            # No history: what the stream showed since the dashboard started.
            rows = []
            for i in reversed(fleet.incidents):
                key = f"live:{i.seq}"
                self._recent[key] = i
                rows.append(
                    (
                        key,
                        (
                            cells.clock(i.at, now),
                            i.category,
                            i.kind,
                            i.worker or "-",
                            i.ident,
                            i.message.splitlines()[0][:120] if i.message else "",
                        ),
                    )
                )
            recent.sync(rows)

    def history(self, snapshot: HistorySnapshot, now: float) -> None:
        """A new read of the read model."""
        self.snapshot = snapshot
        source = self.query_one("#errors-source", Static)
        source.update(Text(snapshot.source, style="" if snapshot.available else "yellow"))
        digest = snapshot.errors
        if digest is None:
            return
        windows = Table(box=None, title="errors by category and severity", title_justify="left")
        windows.add_column("category")
        windows.add_column("severity")
        for w in digest.windows:
            windows.add_column(w.label, justify="right")
        keys = sorted({k for w in digest.windows for k in w.counts})
        for category, severity in keys:
            windows.add_row(
                category,
                severity,
                *(str(w.counts.get((category, severity), 0)) for w in digest.windows),
            )
        windows.add_row(
            Text("all", style="bold"),
            "",
            *(Text(str(w.total), style="bold") for w in digest.windows),
        )
        self.query_one("#errors-windows", Static).update(windows)
        where = Table(box=None, title="last 24 h", title_justify="left")
        where.add_column("where")
        where.add_column("errors", justify="right")
        for name, n in digest.by_worker[:5]:
            where.add_row(f"worker {name}", str(n))
        for name, n in digest.by_hardware[:5]:
            where.add_row(name, str(n))
        self.query_one("#errors-where", Static).update(where)
        self.query_one("#errors-patterns", LiveTable).sync(
            [
                (
                    p.fingerprint,
                    (
                        str(p.count),
                        cells.clock(p.last_seen, now),
                        ", ".join(f"{k} {v}" for k, v in p.categories.items()),
                        ", ".join(list(p.workers)[:3]),
                        p.example.splitlines()[0][:100] if p.example else "",
                    ),
                )
                for p in digest.patterns
            ]
        )
        rows = []
        self._recent = {}
        for n, e in enumerate(digest.recent):
            key = f"db:{n}"
            self._recent[key] = e
            rows.append(
                (
                    key,
                    (
                        cells.clock(e.at, now),
                        e.category,
                        e.severity,
                        e.worker_id or "-",
                        e.nodeid or e.run_id,
                        e.message.splitlines()[0][:120] if e.message else "",
                    ),
                )
            )
        self.query_one("#errors-recent", LiveTable).sync(rows)

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        chosen = self._recent.get(event.row_key.value or "")
        context = self.query_one("#errors-context", Static)
        if chosen is None:
            context.update("")
            return
        fields = {
            name: getattr(chosen, name)
            for name in (
                "run_id",
                "nodeid",
                "ident",
                "worker_id",
                "worker",
                "hardware",
                "category",
                "severity",
                "kind",
                "fingerprint",
            )
            if getattr(chosen, name, "")
        }
        text = Text(" ".join(f"{k}={v}" for k, v in fields.items()) + "\n", style="bold")
        text.append(getattr(chosen, "message", ""))
        context.update(text)
