"""Badges as shields.io endpoint JSON: `{"schemaVersion": 1, "label", "message", "color"}`,
which `https://img.shields.io/endpoint?url=<where the file is served>` draws.

One file each: the combined status of a run (`tests.json`), each suite kind (`suite-<name>.json`,
a suite being the directory a test file sits in below the top test directory: tests/unit,
tests/system; files directly in it are the suite of that directory), coverage (`coverage.json`)
and the flaky count (`flaky.json`). Pure: outcomes and figures in, documents out.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from typing import Any

FAILING = frozenset({"failed", "error"})
# Coverage colours, as most coverage badges step them.
_COVERAGE_STEPS = ((90.0, "brightgreen"), (75.0, "green"), (60.0, "yellowgreen"), (40.0, "yellow"))
# What a status badge counts, in this order; `quarantined` is a failure that cannot fail the
# build (`dtf.core.quarantine`), so it does not turn the badge red.
_ORDER = (
    ("failed", "failed"),
    ("error", "errors"),
    ("quarantined", "quarantined"),
    ("passed", "passed"),
    ("skipped", "skipped"),
)


def endpoint(label: str, message: str, color: str) -> dict[str, Any]:
    return {"schemaVersion": 1, "label": label, "message": message, "color": color}


def status(counts: Mapping[str, int], label: str = "tests") -> dict[str, Any]:
    """`3 failed, 120 passed` in red, `120 passed` in green, `no tests` in grey."""
    failing = sum(counts.get(o, 0) for o in FAILING)
    parts = [f"{counts[o]} {name}" for o, name in _ORDER if counts.get(o)]
    if not parts:
        return endpoint(label, "no tests", "lightgrey")
    return endpoint(label, ", ".join(parts), "red" if failing else "brightgreen")


def coverage(percent: float) -> dict[str, Any]:
    color = next((c for low, c in _COVERAGE_STEPS if percent >= low), "red")
    return endpoint("coverage", f"{percent:.0f}%", color)


def flaky(count: int) -> dict[str, Any]:
    return endpoint("flaky tests", str(count), "brightgreen" if count == 0 else "orange")


def suite_of(nodeid: str) -> str:
    """The suite kind of a test: `tests/unit/test_a.py::t` is `unit`, `tests/test_a.py::t`
    is `tests`, `test_a.py::t` (at the root) is `tests`."""
    parts = nodeid.split("::", 1)[0].replace("\\", "/").split("/")[:-1]
    if len(parts) >= 2:
        return parts[1]
    return parts[0] if parts else "tests"


def suites(outcomes: Iterable[tuple[str, str]]) -> dict[str, dict[str, Any]]:
    """The status badge of each suite, from `(nodeid, outcome)` pairs, keyed by file name."""
    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for nodeid, outcome in outcomes:
        counts[suite_of(nodeid)][outcome] += 1
    return {
        f"suite-{_file_safe(name)}.json": status(tally, label=f"{name} tests")
        for name, tally in sorted(counts.items())
    }


def _file_safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-.") or "tests"


def all_badges(
    outcomes: Iterable[tuple[str, str]], coverage_pct: float | None, flaky_count: int
) -> dict[str, dict[str, Any]]:
    """Every badge of a run, by file name; coverage only when it was measured."""
    pairs = list(outcomes)
    found = {"tests.json": status(Counter(o for _, o in pairs)), **suites(pairs)}
    if coverage_pct is not None:
        found["coverage.json"] = coverage(coverage_pct)
    found["flaky.json"] = flaky(flaky_count)
    return found
