"""How numbers, percentages, p-values, times and tallies are written for people, the same in
every text, Markdown and HTML output."""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping


def num(value: float | None, unit: str = "") -> str:
    """Four significant digits, with the unit when given; "-" for None."""
    if value is None:
        return "-"
    if not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    text = f"{value:.4g}"
    return f"{text} {unit}" if unit else text


def pct(value: float | None, *, signed: bool = True) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:+.1f}%" if signed else f"{value:.1f}%"


def pct_interval(low: float | None, high: float | None) -> str:
    if low is None or high is None:
        return "-"
    return f"[{low:+.1f}%, {high:+.1f}%]"


def p_value(value: float | None) -> str:
    if value is None:
        return "-"
    return "<1e-4" if value < 1e-4 else f"{value:.4f}"


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.0f}%"


def when(epoch: float | None) -> str:
    """UTC time to the second; "-" for None."""
    if epoch is None:
        return "-"
    stamp = datetime.datetime.fromtimestamp(epoch, tz=datetime.UTC)
    return stamp.strftime("%Y-%m-%d %H:%M:%S")


def tally(counts: Mapping[str, int], limit: int = 4) -> str:
    """`a 3, b 1` for the largest `limit` entries, then `+N more`."""
    items = list(counts.items())
    text = ", ".join(f"{key} {n}" for key, n in items[:limit])
    return text + (f", +{len(items) - limit} more" if len(items) > limit else "")


def short_commit(commit: str) -> str:
    return commit[:10] if commit else "-"


def commit_range(old: str, new: str) -> str:
    """`old..new` in short commits (git's range: after old, up to new); one commit when both
    are the same or only one is known; "-" when neither is."""
    if old and new and old != new:
        return f"{short_commit(old)}..{short_commit(new)}"
    return short_commit(new or old)
