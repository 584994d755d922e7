"""`FilterBar`: the `/` filter over a table; hidden until opened, Escape clears and closes it."""

from __future__ import annotations

from textual.binding import Binding
from textual.widgets import Input


class FilterBar(Input):
    """An input whose value the pane's table filters by (a substring of any cell)."""

    DEFAULT_CSS = """
    FilterBar { display: none; height: 3; }
    FilterBar.open { display: block; }
    """
    BINDINGS = [Binding("escape", "close", "Clear filter")]

    def __init__(self, **kwargs) -> None:
        super().__init__(placeholder="filter: any text of a row (Esc clears)", **kwargs)

    def open(self) -> None:
        self.add_class("open")
        self.focus()

    def action_close(self) -> None:
        self.value = ""
        self.remove_class("open")
        self.screen.focus_next()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.screen.focus_next()  # keep the filter, go back to the table
