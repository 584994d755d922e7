"""Starting the dashboard: in this terminal (`run`), or served to browsers (`serve`, with
textual-serve, which starts one `dtf dashboard` per browser tab in a terminal of its own)."""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
import time
from pathlib import Path

from dtf.errors import ConfigError
from tui.app import Dashboard
from tui.feed import Feed
from tui.fleet import Fleet
from tui.history import History


def _log_to_file() -> Path:
    """The app owns the terminal: log lines go to a file instead of over the screen."""
    folder = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "dtf"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "dashboard.log"
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    root.addHandler(handler)
    return path


def run(urls: list[str], db: Path | None, *, theme: str = "dark", mute: bool = False) -> int:
    """Connect (one clear error when the server cannot be reached), then run the app."""
    if db is not None and db.exists() and not db.is_file():
        raise ConfigError(f"--db: {db} is not a file")
    return asyncio.run(_run(urls, db, theme, mute))


async def _run(urls: list[str], db: Path | None, theme: str, mute: bool) -> int:
    fleet = Fleet(started_at=time.time())
    # Connected before the app starts: a wrong URL or key is one line, not a blank screen.
    feed = await Feed.connect(urls, fleet)
    _log_to_file()
    history = History(db, urls) if db is not None else None
    app = Dashboard(fleet, feed=feed, history=history, theme=theme)
    if mute:
        app.player.toggle_mute()
    await app.run_async()
    return 0


def serve(urls: list[str], db: Path | None, *, theme: str, host: str, port: int) -> int:
    """Serve the dashboard at http://host:port until interrupted."""
    from textual_serve.server import Server

    command = [sys.executable, "-m", "dtf", "dashboard", "--server", ",".join(urls)]
    command += ["--theme", theme]
    if db is not None:
        command += ["--db", str(db.resolve())]
    print(f"dtf dashboard: serving http://{host}:{port} (Ctrl-C stops)", flush=True)
    Server(shlex.join(command), host=host, port=port, title="dtf dashboard").serve()
    return 0
