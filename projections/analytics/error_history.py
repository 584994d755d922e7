"""One worker's error history: its failures grouped by category and message fingerprint,
with how often and when each happened.  Pure: the caller reads the failures."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from projections.analytics.fingerprint import fingerprint


@dataclass(frozen=True)
class ErrorKind:
    category: str
    fingerprint: str
    count: int
    first_at: float
    last_at: float
    message: str  # the latest occurrence's own words


def error_history(failures: Iterable[tuple[float, str, str]]) -> list[ErrorKind]:
    """(at, category, message) triples grouped; the most frequent kind first, then the most
    recent."""
    groups: dict[tuple[str, str], list[tuple[float, str]]] = {}
    for at, category, message in failures:
        groups.setdefault((category, fingerprint(message)), []).append((at, message))
    kinds = []
    for (category, fp), seen in groups.items():
        seen.sort()
        kinds.append(ErrorKind(category, fp, len(seen), seen[0][0], seen[-1][0], seen[-1][1]))
    return sorted(kinds, key=lambda k: (-k.count, -k.last_at))
