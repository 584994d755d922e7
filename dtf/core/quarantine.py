"""Quarantined tests: they run and are reported, but their failures do not fail the build.

A pattern names a test by its node id (`tests/test_a.py::test_x` also covers its
parametrisations `test_x[1]`), a whole file or directory by its path, or anything with
shell-style wildcards (`tests/gpu/*`, `*::test_flaky_*`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from fnmatch import fnmatchcase

from events.catalogue import CaseResult

FAILING = frozenset({"failed", "error"})


def matches(nodeid: str, patterns: Iterable[str]) -> bool:
    """Whether any pattern names this node id (see the module docstring)."""
    for pattern in patterns:
        # A node covers what is in it: a test its parametrisations, a file or class its
        # tests, a directory its files.
        inside = (pattern + "[", pattern + "::", pattern.rstrip("/") + "/")
        # Equality first: a parametrised id's `[...]` would read as a wildcard set.
        if nodeid == pattern or fnmatchcase(nodeid, pattern) or nodeid.startswith(inside):
            return True
    return False


def forgiven(cases: Iterable[CaseResult], patterns: Sequence[str]) -> list[CaseResult]:
    """The failing cases that quarantine keeps from failing the build."""
    if not patterns:
        return []
    return [c for c in cases if c.outcome in FAILING and matches(c.nodeid, patterns)]


def parse_file(text: str) -> list[str]:
    """A quarantine file's patterns: one per line; blank lines and `#` comments ignored."""
    return [s for line in text.splitlines() if (s := line.split("#", 1)[0].strip())]
