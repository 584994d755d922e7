"""`LiveTable`: rows in view follow every sync, rows out of view catch up as they scroll in,
the cursor keeps its row, and cells are drawn as text, never as markup."""

from __future__ import annotations

from textual.app import App

from tests.support.polling import eventually_async
from tui.widgets.table import LiveTable

ROWS = 300


class Host(App[None]):
    def compose(self):
        yield LiveTable(("name", "value"))


def rows(version: int) -> list[tuple[str, tuple[str, str]]]:
    return [(f"r{i:03d}", (f"r{i:03d}", f"v{version}")) for i in range(ROWS)]


def drawn(table: LiveTable, index: int) -> list[str]:
    return [str(cell) for cell in table.get_row_at(index)]


async def test_rows_in_view_follow_and_the_rest_catch_up_when_scrolled_to():
    app = Host()
    async with app.run_test(size=(40, 20)) as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(1))
        await pilot.pause()
        table.sync(rows(2))
        await pilot.pause()
        assert drawn(table, 0) == ["r000", "v2"]
        assert drawn(table, ROWS - 1) == ["r299", "v1"]  # out of view: not redrawn yet
        table.scroll_end(animate=False)
        await eventually_async(lambda: drawn(table, ROWS - 1) == ["r299", "v2"])
        assert table.row_count == ROWS


async def test_the_cursor_stays_on_its_row_when_rows_come_and_go():
    app = Host()
    async with app.run_test(size=(40, 20)) as pilot:
        table = app.query_one(LiveTable)
        table.sync(rows(1))
        await pilot.pause()
        table.move_cursor(row=5)
        assert table.selected_key == "r005"
        table.sync(rows(1)[3:])  # three rows gone above it
        await pilot.pause()
        assert table.selected_key == "r005"


async def test_brackets_are_text_not_markup():
    app = Host()
    async with app.run_test(size=(60, 10)) as pilot:
        table = app.query_one(LiveTable)
        table.sync([("t", ("tests/test_x.py::test_a[bold-1]", "[red]x[/red]"))])
        await pilot.pause()
        assert drawn(table, 0) == ["tests/test_x.py::test_a[bold-1]", "[red]x[/red]"]
        screen = app.export_screenshot()
        assert "test_a[bold-1]" in screen and "[red]x[/red]" in screen


async def test_the_filter_hides_rows_by_any_cell():
    app = Host()
    async with app.run_test(size=(40, 20)) as pilot:
        table = app.query_one(LiveTable)
        table.filter_text = "R01"
        table.sync(rows(1))
        await pilot.pause()
        assert table.row_count == 10  # r010..r019
