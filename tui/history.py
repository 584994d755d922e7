"""The dashboard's history panels: errors over days and benchmark trends, read from a DuckDB
read model (`dtf replay`).

DuckDB lets one process open a file at a time, read-only included.  So the dashboard opens
`--db FILE` read-only for the milliseconds of one refresh and closes it again; when another
process holds it (`dtf replay --follow`), it keeps a read model of its own in a cache folder,
brought up to date from the stream on each refresh (`replay` catches up from the sequence it
stored, so only the first refresh is long), and reads that.  Nothing here raises for a missing,
busy or broken file: the snapshot's `source` line says what happened.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from dtf.errors import DtfError
from projections.pipeline.projector import replay
from projections.queries import read
from projections.queries.error_patterns import Pattern, patterns
from projections.queries.read import ErrorRow
from projections.queries.series import metric_series

WINDOWS = (("1h", 3600.0), ("6h", 6 * 3600.0), ("24h", 86400.0), ("7d", 7 * 86400.0))
PATTERNS_KEPT = 50
RECENT_KEPT = 200
TRENDS_KEPT = 30
RUNS_KEPT = 200
_HELD = re.compile(r"in use by another process \(PID (\d+)")


@dataclass(frozen=True, slots=True)
class WindowCounts:
    label: str
    counts: dict[tuple[str, str], int]  # (category, severity) -> errors
    total: int


@dataclass(frozen=True, slots=True)
class ErrorDigest:
    windows: tuple[WindowCounts, ...]
    patterns: tuple[Pattern, ...]
    by_worker: tuple[tuple[str, int], ...]  # last 24 h, most first
    by_hardware: tuple[tuple[str, int], ...]
    recent: tuple[ErrorRow, ...]  # the latest first


@dataclass(frozen=True, slots=True)
class TrendLine:
    """One benchmark series with the change points `dtf trends` finds and, of those, the
    regressions (a step the wrong way for its direction)."""

    label: str
    unit: str
    direction: str
    values: tuple[float, ...]
    commits: tuple[str, ...]
    changes: tuple[int, ...]
    regressed: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class RunSummary:
    run_id: str
    submitted_at: float | None
    commit: str
    branch: str


@dataclass(frozen=True, slots=True)
class HistorySnapshot:
    source: str  # one line: where history comes from, or how to get one
    available: bool
    at: float
    errors: ErrorDigest | None
    trends: tuple[TrendLine, ...]
    runs: tuple[RunSummary, ...]


def how_to_get_one(urls: list[str]) -> str:
    return (
        f"no read model: build one with `dtf replay --server {','.join(urls)} --db dtf.duckdb` "
        "(add --follow to keep it current), then start `dtf dashboard --db dtf.duckdb`"
    )


class History:
    """Owns where history is read from: `db`, or the private read model while `db` is held."""

    def __init__(self, db: Path | None, urls: list[str], *, cache_dir: Path | None = None):
        self.db = Path(db) if db is not None else None
        self.urls = urls
        cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
        self.cache_dir = cache_dir or cache / "dtf" / "dashboard"

    @property
    def private(self) -> Path:
        """The dashboard's own read model for `db` and these servers."""
        assert self.db is not None
        tag = hashlib.sha256(f"{self.db.resolve()}|{','.join(self.urls)}".encode()).hexdigest()
        return self.cache_dir / f"{self.db.stem}-{tag[:10]}.duckdb"

    async def refresh(self, now: float) -> HistorySnapshot:
        if self.db is None:
            return _empty(how_to_get_one(self.urls), now)
        try:
            return await asyncio.to_thread(_read, self.db, now, str(self.db))
        except DtfError as exc:
            held = _HELD.search(str(exc))
            if not held:
                return _empty(str(exc), now)
            pid = held[1]
        try:
            self.cache_dir.mkdir(parents=True, exist_ok=True)
            stats = await replay(self.urls, self.private)
            source = (
                f"{self.db} is held by PID {pid}; history from the dashboard's own read model "
                f"({self.private}), caught up to seq {stats.last_seq}"
            )
            return await asyncio.to_thread(_read, self.private, now, source)
        except DtfError as exc:
            return _empty(f"{self.db} is held by PID {pid}, and a private copy failed: {exc}", now)


def _empty(source: str, now: float) -> HistorySnapshot:
    return HistorySnapshot(source, False, now, None, (), ())


def _read(path: Path, now: float, source: str) -> HistorySnapshot:
    """Everything the panels show, in one short read-only connection."""
    con = read.open_db(path)
    try:
        errors = read.errors(con, since=now - WINDOWS[-1][1])
        results = read.results(con)
        runs = read.runs(con)
    finally:
        con.close()
    return HistorySnapshot(
        source=source,
        available=True,
        at=now,
        errors=digest(errors, now),
        trends=trends(results),
        runs=tuple(RunSummary(r.run_id, r.submitted_at, r.commit, r.branch) for r in runs)[
            -RUNS_KEPT:
        ],
    )


def digest(errors: list[ErrorRow], now: float) -> ErrorDigest:
    """Counts per window, patterns, where they happened, and the latest errors."""
    windows = []
    for label, seconds in WINDOWS:
        inside = [e for e in errors if e.at is not None and e.at >= now - seconds]
        counts = Counter((e.category, e.severity) for e in inside)
        windows.append(WindowCounts(label, dict(counts), len(inside)))
    day = [e for e in errors if e.at is not None and e.at >= now - 86400]
    return ErrorDigest(
        windows=tuple(windows),
        patterns=tuple(patterns(errors)[:PATTERNS_KEPT]),
        by_worker=tuple(Counter(e.worker_id or "-" for e in day).most_common()),
        by_hardware=tuple(Counter(e.hardware or "-" for e in day).most_common()),
        recent=tuple(sorted(errors, key=lambda e: e.at or 0.0, reverse=True)[:RECENT_KEPT]),
    )


def trends(results) -> tuple[TrendLine, ...]:
    """The longest benchmark series, with their change points and regressions."""
    # Imported here: scipy is 70 MB of the dashboard's memory, needed only with a read model.
    from projections.analytics.changepoint import detect

    series = sorted(metric_series(results), key=lambda s: -len(s.values))[:TRENDS_KEPT]
    lines = []
    for s in series:
        changes = detect(s.values) if len(s.values) >= 2 else []
        worse = [
            c.index for c in changes if (c.after_mean > c.before_mean) == (s.direction == "lower")
        ]
        lines.append(
            TrendLine(
                s.label,
                s.unit,
                s.direction,
                s.values,
                s.commits,
                tuple(c.index for c in changes),
                tuple(worse),
            )
        )
    return tuple(lines)
