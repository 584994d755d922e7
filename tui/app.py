"""`Dashboard`: the Textual app of `dtf dashboard`.

It owns the `Fleet` (kept current by a `Feed`, or given whole by a test), the alert board
and its player, and the history read from the read model.  The feed folds events as they come;
the screens are redrawn from the fleet on a timer (`REFRESH_S`), only the visible pane, so a
burst of events costs one redraw and a slow redraw never holds an event up.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path

from textual.app import App
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from dtf.errors import DtfError
from tui.alerts.player import Player
from tui.alerts.rules import Alert, Board, conditions
from tui.feed import Feed
from tui.fleet import Fleet
from tui.history import History, HistorySnapshot
from tui.screens.errors import Errors
from tui.screens.help import Help
from tui.screens.opened import Opened
from tui.screens.overview import Overview
from tui.screens.runs import Runs, RunScreen
from tui.screens.task import TaskScreen
from tui.screens.topology import Topology
from tui.screens.trends import Trends
from tui.screens.worker import WorkerScreen
from tui.screens.workers import Workers
from tui.widgets.cells import clock
from tui.widgets.filter import FilterBar

REFRESH_S = 0.5  # redraws per second: two
HISTORY_EVERY_S = 15.0
ALERTS_NOTIFIED = 2  # a burst of alerts shows this many notifications, the rest in the list
PANES = ("overview", "workers", "runs", "errors", "trends", "topology")
THEMES = {"dark": "textual-dark", "light": "textual-light"}
_SEVERITY = {"system-critical": "error", "critical": "error", "warning": "warning"}


class Commands(Provider):
    """The command palette's entries: every pane, the sound, the theme, each worker."""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, Dashboard)
        matcher = self.matcher(query)
        for name, help_text, run in app.palette():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), run, help=help_text)


class Dashboard(App[None]):
    """The live dashboard (see the module's docstring)."""

    TITLE = "dtf dashboard"
    COMMANDS = App.COMMANDS | {Commands}
    CSS = """
    #banner { display: none; height: auto; background: $error; color: $text; padding: 0 1; }
    #banner.shown { display: block; }
    TabbedContent { height: 1fr; }
    TabPane { padding: 0; }
    """
    BINDINGS = [
        *(
            Binding(str(n), f"pane('{name}')", name.capitalize())
            for n, name in enumerate(PANES, start=1)
        ),
        Binding("slash", "filter", "Filter"),
        Binding("question_mark", "help", "Help"),
        Binding("m", "mute", "Mute"),
        Binding("plus,equals_sign", "louder", "Louder", show=False),
        Binding("minus", "quieter", "Quieter", show=False),
        Binding("t", "toggle_theme", "Theme", show=False),
        Binding("q", "quit", "Quit"),
    ]

    def __init__(
        self,
        fleet: Fleet,
        *,
        feed: Feed | None = None,
        history: History | None = None,
        player: Player | None = None,
        clock: Callable[[], float] = time.time,
        theme: str = "dark",
        refresh_s: float = REFRESH_S,
    ) -> None:
        super().__init__()
        self.fleet = fleet
        self.feed = feed
        self.history_source = history
        self.player = player if player is not None else Player(bell=self.bell)
        self.board = Board()
        self._clock = clock
        self._theme_name = theme
        self.refresh_s = refresh_s
        self.redraws = 0
        self.snapshot: HistorySnapshot | None = None

    def now(self) -> float:
        return self._clock()

    @property
    def main(self) -> Screen:
        """The screen of the panes (drill-downs are pushed over it)."""
        return self.screen_stack[0]

    def compose(self):
        yield Header()
        yield Static(id="banner")
        with TabbedContent(initial="overview"):
            with TabPane("1 Overview", id="overview"):
                yield Overview()
            with TabPane("2 Workers", id="workers"):
                yield Workers()
            with TabPane("3 Runs", id="runs"):
                yield Runs()
            with TabPane("4 Errors", id="errors"):
                yield Errors()
            with TabPane("5 Trends", id="trends"):
                yield Trends()
            with TabPane("6 Topology", id="topology"):
                yield Topology()
        yield Footer()

    def on_mount(self) -> None:
        self.theme = THEMES.get(self._theme_name, THEMES["dark"])
        self.sub_title = self.player.describe()
        if self.feed is not None:
            self.run_worker(self._follow(self.feed), group="feed")
        if self.history_source is not None:
            self.run_worker(self._read_history(self.history_source), group="history")
        else:
            self.show_history(
                HistorySnapshot(
                    source="no read model (start with --db FILE; build it with dtf replay)",
                    available=False,
                    at=self.now(),
                    errors=None,
                    trends=(),
                    runs=(),
                )
            )
        self.tick()
        self.set_interval(self.refresh_s, self.tick)

    async def _follow(self, feed: Feed) -> None:
        """The feed, restarted when it fails (its server gone for good, a refused read)."""
        while True:
            try:
                await feed.run()
            except DtfError as exc:
                feed.problem = str(exc)
            await asyncio.sleep(2.0)

    async def _read_history(self, history: History) -> None:
        while True:
            snapshot = await history.refresh(self.now())
            self.show_history(snapshot)
            await asyncio.sleep(HISTORY_EVERY_S)

    def show_history(self, snapshot: HistorySnapshot) -> None:
        self.snapshot = snapshot
        source = self.history_source
        db = getattr(source, "db", None)
        broken = db is not None and Path(db).exists() and not snapshot.available
        self.fleet.history_problem = snapshot.source if broken else ""
        self.main.query_one(Errors).history(snapshot, self.now())
        self.main.query_one(Trends).history(snapshot)

    # --- the refresh -------------------------------------------------------------------

    def tick(self) -> None:
        """Raise the alerts due, then redraw the banner and what is on screen."""
        now = self.now()
        if not self.main.query("#banner"):
            return  # still composing, or shutting down
        if self.fleet.caught_up or self.feed is None:
            self.alert(self.board.update(conditions(self.fleet, now), now))
        self._banner(now)
        screen = self.screen
        if isinstance(screen, WorkerScreen | RunScreen | TaskScreen):
            with contextlib.suppress(NoMatches):  # pushed, its widgets not composed yet
                screen.show(self.fleet, now)
        elif not isinstance(screen, Screen) or screen is self.screen_stack[0]:
            self._show_pane(now)
        self.redraws += 1

    def _show_pane(self, now: float) -> None:
        active = self.main.query_one(TabbedContent).active
        if active == "overview":
            self.main.query_one(Overview).show(self.fleet, list(self.board.raised), now)
        elif active == "workers":
            self.main.query_one(Workers).show(self.fleet, now)
        elif active == "runs":
            self.main.query_one(Runs).show(self.fleet, now)
        elif active == "errors":
            self.main.query_one(Errors).show(self.fleet, now)
        elif active == "topology":
            on = self.feed.store.connected_to if self.feed is not None else None
            self.main.query_one(Topology).show(self.fleet, on)

    def _banner(self, now: float) -> None:
        banner = self.main.query_one("#banner", Static)
        problem = ""
        if not self.fleet.connected:
            problem = (
                f"server gone since {clock(self.fleet.disconnected_at, now)}: reconnecting… "
                "(what is shown is as it was)"
            )
        elif self.feed is not None and self.feed.problem:
            problem = self.feed.problem
        banner.update(problem)
        banner.set_class(bool(problem), "shown")

    def alert(self, alerts: Iterable[Alert]) -> None:
        """A notification per alert (the first few of a burst), one sound for the worst."""
        alerts = list(alerts)
        for a in alerts[:ALERTS_NOTIFIED]:
            self.notify(
                a.detail or a.title,
                title=f"{a.tier.upper()}: {a.title}",
                severity=_SEVERITY.get(a.tier, "information"),  # type: ignore[arg-type]
                timeout=10 if a.tier in ("system-critical", "critical") else 5,
            )
        if len(alerts) > ALERTS_NOTIFIED:
            self.notify(f"and {len(alerts) - ALERTS_NOTIFIED} more alerts (overview)")
        if alerts:
            self.player.play(alerts[0].tier)  # sorted most severe first

    # --- drill-downs and actions -------------------------------------------------------

    def on_opened(self, message: Opened) -> None:
        self.open(message.kind, message.ident)

    def open(self, kind: str, ident: str) -> None:
        """Push the drill-down screen of a worker, a run or a task."""
        screen = {"worker": WorkerScreen, "run": RunScreen, "task": TaskScreen}[kind]
        self.push_screen(screen(ident))

    def action_pane(self, name: str) -> None:
        if len(self.screen_stack) > 1:
            self.pop_screen()
        self.main.query_one(TabbedContent).active = name
        self._show_pane(self.now())

    def action_filter(self) -> None:
        """Open the filter of the table on screen (the workers', the runs', a run's tasks)."""
        where: Widget = self.screen
        if where is self.screen_stack[0]:
            where = self.main.query_one(f"TabPane#{self.main.query_one(TabbedContent).active}")
        bars = where.query(FilterBar)
        if bars:
            bars.first().open()

    def action_help(self) -> None:
        sections = [("everywhere", list(self.BINDINGS))]  # type: ignore[arg-type]
        for cls in (WorkerScreen, RunScreen, TaskScreen):
            sections.append((cls.__name__.replace("Screen", " (opened)"), list(cls.BINDINGS)))
        self.push_screen(Help(sections))  # type: ignore[arg-type]

    def action_mute(self) -> None:
        muted = self.player.toggle_mute()
        self.notify("sound off" if muted else "sound on", timeout=2)
        self.sub_title = self.player.describe()

    def action_louder(self) -> None:
        self.notify(f"volume {self.player.louder()}%", timeout=2)
        self.sub_title = self.player.describe()

    def action_quieter(self) -> None:
        self.notify(f"volume {self.player.quieter()}%", timeout=2)
        self.sub_title = self.player.describe()

    def action_toggle_theme(self) -> None:
        self.theme = THEMES["light"] if self.theme == THEMES["dark"] else THEMES["dark"]

    def palette(self) -> list[tuple[str, str, Callable[[], object]]]:
        """The command palette's entries: (name, help, callback)."""
        entries: list[tuple[str, str, Callable[[], object]]] = [
            (f"Show {name}", f"the {name} pane (key {n})", partial(self.action_pane, name))
            for n, name in enumerate(PANES, start=1)
        ]
        entries += [
            ("Mute or unmute alerts", self.player.describe(), self.action_mute),
            ("Louder alerts", "volume +10%", self.action_louder),
            ("Quieter alerts", "volume -10%", self.action_quieter),
            ("Toggle light and dark", "the theme", self.action_toggle_theme),
            ("Keys", "the help screen", self.action_help),
        ]
        for worker_id in sorted(self.fleet.view.workers)[:200]:
            entries.append(
                (
                    f"Open worker {worker_id}",
                    "its load, errors, history and actions",
                    partial(self.open, "worker", worker_id),
                )
            )
        for run_id in list(self.fleet.view.runs)[-50:]:
            entries.append((f"Open run {run_id}", "its tasks", partial(self.open, "run", run_id)))
        return entries

    async def on_unmount(self) -> None:
        self.player.close()
        if self.feed is not None:
            await self.feed.close()
