"""Trends: the benchmark series of the read model, one plotted at a time (the one under the
cursor), with its change points marked and the regressions among them in red."""

from __future__ import annotations

from rich.text import Text
from textual.containers import Vertical
from textual.widgets import Static
from textual_plotext import PlotextPlot

from tui.history import HistorySnapshot, TrendLine
from tui.widgets.table import LiveTable

COLUMNS = ("series", "points", "last", "unit", "changes", "regressions")


def trend_row(line: TrendLine) -> tuple[str, tuple[str | Text, ...]]:
    last = f"{line.values[-1]:.4g}" if line.values else "-"
    return (
        line.label,
        (
            line.label,
            str(len(line.values)),
            last,
            line.unit,
            str(len(line.changes)) if line.changes else "",
            Text(str(len(line.regressed)), style="bold red") if line.regressed else "",
        ),
    )


class Trends(Vertical):
    """The series table over the plot of the selected series."""

    DEFAULT_CSS = """
    Trends #trends-source { height: auto; padding: 0 1; color: $text-muted; }
    Trends LiveTable { height: 1fr; max-height: 10; }
    Trends PlotextPlot { height: 2fr; min-height: 8; }
    """

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.lines: dict[str, TrendLine] = {}
        self.plotted: str | None = None

    def compose(self):
        yield Static("reading the read model…", id="trends-source")
        yield LiveTable(COLUMNS, id="trends-table")
        yield PlotextPlot(id="trends-plot")

    def history(self, snapshot: HistorySnapshot) -> None:
        source = self.query_one("#trends-source", Static)
        if not snapshot.available:
            source.update(Text(snapshot.source, style="yellow"))
        elif not snapshot.trends:
            source.update("no benchmark results yet (dtf run --command ... records them)")
        else:
            source.update(f"{len(snapshot.trends)} series · {snapshot.source}")
        self.lines = {line.label: line for line in snapshot.trends}
        table = self.query_one(LiveTable)
        table.sync([trend_row(line) for line in snapshot.trends])
        self.plot(table.selected_key)

    def on_data_table_row_highlighted(self, event: LiveTable.RowHighlighted) -> None:
        event.stop()
        self.plot(event.row_key.value)

    def plot(self, label: str | None) -> None:
        line = self.lines.get(label or "")
        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_data()
        plt.clear_figure()
        if line is None:
            plt.title("no series selected")
            widget.refresh()
            return
        xs = list(range(1, len(line.values) + 1))
        plt.plot(xs, list(line.values), marker="braille", label=line.label)
        for index in line.changes:
            regression = index in line.regressed
            plt.vline(index + 1, "red" if regression else "orange")
        regressions = [i for i in line.regressed if 0 <= i < len(line.values)]
        if regressions:
            plt.scatter(
                [i + 1 for i in regressions],
                [line.values[i] for i in regressions],
                color="red",
                marker="x",
                label="regression",
            )
        better = "lower" if line.direction == "lower" else "higher"
        plt.title(f"{line.label} ({line.unit or 'value'}, {better} is better)")
        plt.xlabel("run")
        widget.refresh()
        self.plotted = line.label
