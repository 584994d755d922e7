"""The help screen: every key of the dashboard, from the bindings themselves (so it cannot
drift from what the keys do)."""

from __future__ import annotations

from rich.table import Table
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

MOUSE = (
    "The mouse works too: click a tab, a row (twice to open it), a button; scroll the tables.\n"
    "Ctrl+P opens the command palette: every screen and action by name."
)


def key_table(sections: list[tuple[str, list[Binding]]]) -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2))
    table.add_column(style="bold cyan", no_wrap=True)
    table.add_column()
    for title, bindings in sections:
        table.add_row(f"[b]{title}[/b]", "")
        for binding in bindings:
            keys = " ".join(k.strip() for k in binding.key.split(","))
            keys = keys.replace("question_mark", "?").replace("slash", "/").replace("plus", "+")
            keys = keys.replace("minus", "-").replace("equals_sign", "=").replace("escape", "Esc")
            table.add_row(keys, binding.description or binding.action)
        table.add_row("", "")
    return table


class Help(ModalScreen[None]):
    """Lists the keys; any of Escape, q or ? closes it."""

    DEFAULT_CSS = """
    Help { align: center middle; }
    Help > VerticalScroll {
        width: 76; max-height: 90%; border: thick $primary; background: $surface; padding: 1 2;
    }
    """
    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, sections: list[tuple[str, list[Binding]]]) -> None:
        super().__init__()
        self.sections = sections

    def compose(self):
        with VerticalScroll():
            yield Static(key_table(self.sections))
            yield Static(MOUSE)

    def action_dismiss(self, result: None = None) -> None:  # type: ignore[override]
        self.dismiss(None)
