"""How values look in the dashboard's cells: ages, durations, load sparklines, statuses."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from rich.text import Text

_BLOCKS = "▁▂▃▄▅▆▇█"
# Each status its colour: green is work going on, red needs someone, dim is idle or gone.
STATUS_STYLE = {
    "busy": "bold green",
    "idle": "green",
    "draining": "yellow",
    "quarantined": "bold red",
    "disabled": "magenta",
    "lost": "red",
    "queued": "dim",
    "assigned": "cyan",
    "running": "bold green",
    "retrying": "yellow",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}
TIER_STYLE = {
    "system-critical": "bold white on red",
    "critical": "bold red",
    "warning": "yellow",
    "info": "cyan",
}


def spark(values: Sequence[float], width: int = 12, top: float = 100.0) -> str:
    """The last `width` values (0..top) as block characters; blank where none."""
    shown = list(values)[-width:]
    cells = [_BLOCKS[min(len(_BLOCKS) - 1, max(0, int(v / top * len(_BLOCKS))))] for v in shown]
    return "".join(cells).rjust(width)


def age(seconds: float | None) -> str:
    """'0.4s', '12s', '3m', '2h', '5d'; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds < 10:
        return f"{seconds:.1f}s"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit}"
    return f"{seconds:.0f}s"


def duration(seconds: float | None) -> str:
    """'4.2s', '3m05s', '1h02m'; '-' when unknown."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def clock(at: float | None, now: float) -> str:
    """Local time of day, with the date when it was not the day of `now`."""
    if not at:
        return "-"
    when = dt.datetime.fromtimestamp(at)
    today = dt.datetime.fromtimestamp(now).date()
    return when.strftime("%H:%M:%S" if when.date() == today else "%m-%d %H:%M")


def status(value: str) -> Text:
    return Text(value, style=STATUS_STYLE.get(value, ""))


def tier(value: str) -> Text:
    return Text(value.upper().replace("SYSTEM-", "SYS-"), style=TIER_STYLE.get(value, ""))


def counts(values: dict[str, int]) -> Text:
    """'12 passed 1 failed' with failures in red."""
    text = Text()
    for outcome in ("passed", "failed", "error", "skipped", "xfailed", "xpassed"):
        n = values.get(outcome, 0)
        if n:
            style = {"failed": "red", "error": "red", "passed": "green"}.get(outcome, "")
            text.append(f"{n} {outcome} ", style=style)
    return text if text.plain else Text("-", style="dim")
