"""`LiveTable`: a DataTable kept in step with rows recomputed on every refresh.

A refresh hands it every row (a key and its cells); it changes only the cells that differ, so
a table of a thousand workers redraws a few cells a tick instead of rebuilding, and the cursor
stays on the same row.  A filter (any substring of a row's text, case-insensitive) hides rows.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.widgets import DataTable

Cell = str | Text
Row = tuple[str, tuple[Cell, ...]]


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else str(cell)


class LiveTable(DataTable):
    """Owns the rows shown, by key, and the filter."""

    DEFAULT_CSS = """
    LiveTable { height: 1fr; }
    """

    def __init__(self, columns: Sequence[str], **kwargs) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, **kwargs)
        self._columns = tuple(columns)
        self._shown: dict[str, tuple[Cell, ...]] = {}
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
        for key, cells in rows:
            old = self._shown[key]
            if old == cells:
                continue
            for name, before, after in zip(self._columns, old, cells, strict=True):
                if before != after:
                    self.update_cell(key, name, after)
            self._shown[key] = cells

    def _rebuild(self, rows: Sequence[Row]) -> None:
        selected = self.selected_key
        self.clear()
        for key, cells in rows:
            self.add_row(*cells, key=key)
        self._shown = {key: cells for key, cells in rows}
        if selected in self._shown:
            self.move_cursor(row=self.get_row_index(selected), animate=False)

    @property
    def selected_key(self) -> str | None:
        """The key of the row under the cursor (None when the table is empty)."""
        if not self._shown or self.cursor_row < 0 or self.cursor_row >= self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key
        return key.value if key is not None else None
