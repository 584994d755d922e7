"""`LiveTable`: a DataTable kept in step with rows recomputed on every refresh.

A refresh hands it every row (a key and its cells); it changes only the cells that differ, and
only in the rows in view: every `update_cell` repaints the widget, so a thousand workers whose
load changes each tick would cost thousands of repaints where forty rows are seen.  Rows out of
view are brought up to date as they scroll in.  The cursor stays on the same row, and a filter
(any substring of a row's text, case-insensitive) hides rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


def _text(cell: Cell) -> Text:
    """A cell as the table should draw it.  DataTable reads a str as markup: a test id such
    as `test_x[a-1]` would lose its brackets, and parsing every cell of every redraw is where
    a table of live rows spends its time."""
    return cell if isinstance(cell, Text) else Text(cell, no_wrap=True, end="")


class LiveTable(DataTable):
    """Owns the rows shown, by key, and the filter."""

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = tuple(columns)
        self._shown: dict[str, tuple[Cell, ...]] = {}  # what the DataTable holds
        self._latest: dict[str, tuple[Cell, ...]] = {}  # what it should show, same keys
        self.filter_text = ""

    def on_mount(self) -> None:
        for name in self._columns:
            self.add_column(name, key=name)

    def sync(self, rows: Sequence[Row]) -> None:
        """Show `rows` (in their order), those that pass the filter."""
        needle = self.filter_text.lower()
        if needle:
            rows = [r for r in rows if any(needle in _plain(c).lower() for c in (r[0], *r[1]))]
        keys = [key for key, _ in rows]
        if keys != list(self._shown):
            self._rebuild(rows)
            return
        self._latest = dict(rows)
        self._catch_up()

    def _catch_up(self) -> None:
        """Bring the rows in view (and a row either side) up to date."""
        # Every row is one line high, so the rows in view start at the scroll offset.
        top = max(0, int(self.scroll_y) - 1)
        for key in list(self._latest)[top : top + self.size.height + 2]:
            old, cells = self._shown[key], self._latest[key]
            if old == cells:
                continue
            for name, before, after in zip(self._columns, old, cells, strict=True):
                if before != after:
                    self.update_cell(key, name, _text(after))
            self._shown[key] = cells

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        self._catch_up()

    def _rebuild(self, rows: Sequence[Row]) -> None:
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*map(_text, cells), key=key)
        self._shown = {key: cells for key, cells in rows}
        self._latest = dict(self._shown)
        if selected in self._shown:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor (None when the table is empty)."""
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value if key is not None else None
