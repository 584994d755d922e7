"""The options of `dtf run`, and the one check of their values for every source.

A value comes from a flag (`--timeout 0`) or from `[tool.dtf]` in pyproject.toml (`timeout = inf`,
which TOML allows); both go through `check_option`, so a bad value is refused with the same
one-line `ConfigError` naming the option and where it came from, before any server starts.
Events carry these values, and an event dtf cannot read back must never be written.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from dtf.core.requirements import encodable
from dtf.core.scheduling import STRATEGIES
from dtf.errors import ConfigError
from events.catalogue import Requirements

# Read models store a priority as a 32-bit INTEGER (projections/pipeline/schema.py).
PRIORITY_RANGE = (-(2**31), 2**31 - 1)
# Embedded workers are processes on this machine, started one by one: a typo such as
# `workers = 40000` would start until the machine gives out rather than fail.
MAX_WORKERS = 1024


@dataclass
class RunOptions:
    """What one `dtf run` was asked to do, flags merged over `[tool.dtf]` (`options_from`)."""

    paths: list[str]
    pytest_args: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)
    repeat: int = 1
    server: str | None = None
    workers: int | None = None  # None: one per CPU
    split: str = "file"
    timeout: float = 600.0
    strategy: str = "duration"
    requires: Requirements = field(default_factory=Requirements)
    priority: int = 0
    reruns: int = 0
    max_attempts: int = 3
    junit_xml: Path | None = None
    json: Path | None = None
    slowest: int | None = None  # dtf's --durations; None: pytest's own, if any
    verbose: bool = False
    progress: bool = True
    plain_progress: float | None = None  # off a terminal, a progress line every N seconds
    labels: list[str] = field(default_factory=list)
    python: str | None = None  # the project's interpreter (None: dtf's own)
    tags: dict[str, str] = field(default_factory=dict)
    quarantine: list[str] = field(default_factory=list)  # patterns (`dtf.core.quarantine`)
    # `--cov`: the sources to measure ("" for coverage.py's default); None: no coverage.
    coverage: list[str] | None = None
    coverage_reports: list[str] = field(default_factory=list)  # `--cov-report`; none: term
    root: Path = field(default_factory=Path.cwd)


@dataclass(frozen=True)
class Rule:
    """What one option accepts: its flag, the words for a valid value, and the test of one."""

    flag: str
    expect: str
    valid: Callable[[object], bool]
    each: bool = False  # a list (or a dict's keys and values): every element must be valid


def _whole(low: int, high: int | None = None) -> Callable[[object], bool]:
    def valid(value: object) -> bool:
        # bool is an int in Python, never a count.
        if isinstance(value, bool) or not isinstance(value, int):
            return False
        return value >= low and (high is None or value <= high)

    return valid


def _seconds(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    # An int is always finite (and math.isfinite overflows on a huge one).
    return value > 0 and (isinstance(value, int) or math.isfinite(value))


def _one_of(*choices: str) -> Callable[[object], bool]:
    return lambda value: value in choices


def _text(value: object) -> bool:
    return isinstance(value, str) and encodable(value)


RULES: dict[str, Rule] = {
    "timeout": Rule("--timeout", "a finite number of seconds > 0", _seconds),
    "workers": Rule("--workers", f"a whole number from 1 to {MAX_WORKERS}", _whole(1, MAX_WORKERS)),
    "reruns": Rule("--reruns", "a whole number >= 0", _whole(0)),
    "max_attempts": Rule("--max-attempts", "a whole number >= 1", _whole(1)),
    "repeat": Rule("--repeat", "a whole number >= 1", _whole(1)),
    "priority": Rule(
        "--priority",
        f"a whole number from {PRIORITY_RANGE[0]} to {PRIORITY_RANGE[1]}",
        _whole(*PRIORITY_RANGE),
    ),
    "split": Rule("--split", "'file' or 'test'", _one_of("file", "test")),
    "strategy": Rule(
        "--strategy", f"one of {', '.join(map(repr, sorted(STRATEGIES)))}", _one_of(*STRATEGIES)
    ),
    "paths": Rule("a test path", "valid UTF-8 text", _text, each=True),
    "pytest_args": Rule("a pytest argument", "valid UTF-8 text", _text, each=True),
    "commands": Rule("--command", "valid UTF-8 text", _text, each=True),
    "tags": Rule("--tag", "valid UTF-8 text", _text, each=True),
    "labels": Rule("a label", "valid UTF-8 text", _text, each=True),
    "quarantine": Rule("a quarantine pattern", "valid UTF-8 text", _text, each=True),
    "coverage": Rule("--cov", "valid UTF-8 text", _text, each=True),
    "coverage_reports": Rule("--cov-report", "valid UTF-8 text", _text, each=True),
}


def check_option(name: str, value: object, where: str | None = None) -> None:
    """Refuse a bad value of option `name`; `where` names its source (default: its flag).

    Options without a rule, and None (not given), pass.
    """
    rule = RULES.get(name)
    if rule is None or value is None:
        return
    for candidate in _elements(value) if rule.each else [value]:
        if not rule.valid(candidate):
            raise ConfigError(f"{where or rule.flag} must be {rule.expect}, got {candidate!r}")


def _elements(value: object) -> list[object]:
    """A list's items, or a dict's keys and values (`--tag KEY=VALUE`)."""
    if isinstance(value, dict):
        return [*value.keys(), *value.values()]
    return list(value) if isinstance(value, list | tuple) else [value]


def check_flags(values: dict[str, object]) -> None:
    """Check every option given on the command line (None: not given)."""
    for name, value in values.items():
        check_option(name, value)


def setting_source(key: str, path: Path) -> str:
    """How an error names a `[tool.dtf]` key."""
    return f"{key} in [tool.dtf] of {path}"
