"""Recurring error patterns for `dtf errors`.

Errors are grouped by fingerprint (the stored one, or
`projections.analytics.fingerprint.fingerprint` of the message when the row has none);
`projections.analytics.fingerprint.group` then merges fingerprints whose token similarity to a
pattern's head reaches the threshold. Fingerprints are offered most frequent first, so the head
is the commonest form and the result does not depend on the order of the rows.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from projections.analytics.fingerprint import fingerprint, group
from projections.queries.read import ErrorRow

DEFAULT_SIMILARITY = 0.8


@dataclass(frozen=True, slots=True)
class Pattern:
    """A recurring error: its representative fingerprint, the fingerprints merged into it,
    how often and when it was seen, where, and its most recent message."""

    fingerprint: str
    variants: tuple[str, ...]
    count: int
    first_seen: float | None
    last_seen: float | None
    categories: dict[str, int]
    workers: dict[str, int]
    hardware: dict[str, int]
    example: str


def patterns(
    rows: Iterable[ErrorRow],
    *,
    threshold: float = DEFAULT_SIMILARITY,
    min_count: int = 1,
) -> list[Pattern]:
    """Patterns seen at least `min_count` times, most frequent first."""
    by_print: dict[str, list[ErrorRow]] = defaultdict(list)
    for row in rows:
        by_print[row.fingerprint or fingerprint(row.message)].append(row)
    # The most frequent fingerprint of a group heads it: `group` compares with the head.
    ordered = sorted(by_print, key=lambda k: (-len(by_print[k]), k))
    found = [_pattern(members, by_print) for members in group(ordered, threshold)]
    found = [p for p in found if p.count >= min_count]
    return sorted(found, key=lambda p: (-p.count, -(p.last_seen or 0.0), p.fingerprint))


def _pattern(members: Sequence[str], by_print: dict[str, list[ErrorRow]]) -> Pattern:
    rows = sorted((row for key in members for row in by_print[key]), key=lambda r: r.at or 0.0)
    times = [row.at for row in rows if row.at is not None]
    return Pattern(
        fingerprint=members[0],
        variants=tuple(members),
        count=len(rows),
        first_seen=min(times) if times else None,
        last_seen=max(times) if times else None,
        categories=_tally(row.category for row in rows),
        workers=_tally(row.worker_id for row in rows),
        hardware=_tally(row.hardware for row in rows),
        example=rows[-1].message,
    )


def _tally(values: Iterable[str]) -> dict[str, int]:
    """Counts, largest first; empty values count as "-"."""
    counts = Counter(value or "-" for value in values)
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


def pattern_json(pattern: Pattern) -> dict[str, Any]:
    return {
        "fingerprint": pattern.fingerprint,
        "variants": list(pattern.variants),
        "count": pattern.count,
        "first_seen": pattern.first_seen,
        "last_seen": pattern.last_seen,
        "categories": pattern.categories,
        "workers": pattern.workers,
        "hardware": pattern.hardware,
        "example": pattern.example,
    }
