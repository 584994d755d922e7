"""The pytest options that shape the end of a run, read from the places pytest reads them.

dtf prints the summary a plain pytest run would print, so it honours the options that decide
that summary: `-r` (which short-summary lines), `--durations`/`--durations-min`, `-v`/`-q`/
`--verbosity`, `--no-fold-skipped`, `--force-short-summary`, `--tb=no` and `--no-summary`.
pytest takes them from the config file's `addopts`, then `$PYTEST_ADDOPTS`, then its command
line, the last value of an option winning (`_pytest.config.Config.parse`); the config file is
found as pytest finds it (`dtf.client.pytest_config`).  Every other option is stepped over: it is
for the workers' pytest, not for the summary.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TypeVar

from dtf.client.pytest_config import locate, split_addopts

_T = TypeVar("_T")

# pytest's `-r` default (`_REPORTCHARS_DEFAULT`).
DEFAULT_REPORTCHARS = "fE"

# pytest's own options that take a value, so that the value is never read as an option or a
# path; a plugin's unknown option is stepped over alone (its value then looks like a path,
# which only matters if it names an existing directory).
_SHORT_WITH_VALUE = frozenset("kmrWcpo")
_SHORT_FLAGS = frozenset("xsvqlVh")
# fmt: off
_LONG_WITH_VALUE = frozenset((
    "--maxfail", "--pdbcls", "--capture", "--lfnf", "--last-failed-no-failures", "--durations",
    "--durations-min", "--verbosity", "--report-chars", "--tb", "--show-capture", "--color",
    "--code-highlight", "--pastebin", "--junitxml", "--junit-xml", "--junitprefix",
    "--junit-prefix", "--pythonwarnings", "--max-warnings", "--ignore", "--ignore-glob",
    "--deselect", "--confcutdir", "--import-mode", "--doctest-report", "--doctest-glob",
    "--config-file", "--inifile", "--rootdir", "--basetemp", "--override-ini", "--assert",
    "--log-level", "--log-format", "--log-date-format", "--log-cli-level", "--log-cli-format",
    "--log-cli-date-format", "--log-file", "--log-file-mode", "--log-file-level",
    "--log-file-format", "--log-file-date-format", "--log-auto-indent", "--log-disable",
))
# fmt: on


@dataclass(frozen=True)
class SummaryOptions:
    """What pytest's options ask of the end of a run; the defaults are pytest's."""

    reportchars: str = DEFAULT_REPORTCHARS  # as given; `report_categories` resolves it
    verbosity: int = 0
    durations: int | None = None  # None: no durations section
    durations_min: float | None = None  # None: 0.005 s, or 0 from -vv
    fold_skipped: bool = True
    force_short_summary: bool = False
    tbstyle: str = "auto"
    no_summary: bool = False
    on_ci: bool = False  # $CI or $BUILD_NUMBER: pytest prints messages untrimmed
    rootdir: Path | None = None  # where node ids start, when not the invocation directory
    invocation_dir: Path | None = None

    @property
    def report_categories(self) -> str:
        """pytest's `getreportopt` without warnings (dtf records none): e.g. "sxXEf" for -ra."""
        chars = ""
        for char in self.reportchars:
            char = char.lower() if char in "FS" else char  # old aliases
            if char == "a":
                chars = "sxXEf"
            elif char == "A":
                chars = "PpsxXEf"
            elif char == "N":
                chars = ""
            elif char not in chars and char != "w":
                chars += char
        return chars

    @property
    def shortest_duration(self) -> float:
        """Shorter durations are hidden from the durations section."""
        if self.durations_min is not None:
            return self.durations_min
        return 0.005 if self.verbosity < 2 else 0.0

    @property
    def untrimmed_messages(self) -> bool:
        """Short-summary messages in full rather than cut to the terminal width."""
        return (self.on_ci or self.verbosity >= 2) and not self.force_short_summary

    def relative_nodeid(self, nodeid: str) -> str:
        """A node id as pytest prints it: its path relative to the invocation directory."""
        if self.rootdir is None or self.invocation_dir in (None, self.rootdir):
            return nodeid
        path, sep, rest = nodeid.partition("::")
        full = os.path.normpath(self.rootdir / path)
        return os.path.relpath(full, self.invocation_dir) + sep + rest


@dataclass
class _Scan:
    """What one pass over a command line found."""

    options: SummaryOptions
    positional: list[str] = field(default_factory=list)
    inifile: str | None = None
    rootdir: str | None = None
    addopts_override: str | None = None


def read(
    root: Path, args: Sequence[str], environ: Mapping[str, str] | None = None
) -> SummaryOptions:
    """The summary options of `pytest ARGS` run in `root`: config addopts, env, then ARGS."""
    env = os.environ if environ is None else environ
    try:
        from_env = shlex.split(env.get("PYTEST_ADDOPTS", ""))
    except ValueError:  # unbalanced quotes: pytest refuses to start
        from_env = []
    first = scan([*from_env, *args])
    config = locate(root, first.positional, inifile=first.inifile, rootdir_arg=first.rootdir)
    addopts = config.addopts
    if first.addopts_override is not None:
        addopts = split_addopts(first.addopts_override)
    on_ci = any(env.get(name) for name in ("CI", "BUILD_NUMBER"))
    base = SummaryOptions(on_ci=on_ci, rootdir=config.rootdir, invocation_dir=root)
    return scan([*addopts, *from_env, *args], base).options


def scan(args: Sequence[str], base: SummaryOptions | None = None) -> _Scan:
    """Read the summary options (over `base`) and the positional arguments of a command line."""
    found = _Scan(base or SummaryOptions())
    opts = found.options
    for name, value in _tokens(args):
        if name == "":
            found.positional.append(value or "")
        elif name in ("-v", "--verbose"):
            opts = replace(opts, verbosity=opts.verbosity + 1)
        elif name in ("-q", "--quiet"):
            opts = replace(opts, verbosity=opts.verbosity - 1)
        elif name == "--no-fold-skipped":
            opts = replace(opts, fold_skipped=False)
        elif name == "--force-short-summary":
            opts = replace(opts, force_short_summary=True)
        elif name == "--no-summary":
            opts = replace(opts, no_summary=True)
        elif value is None:
            continue  # a flag the summary does not depend on, or a value missing at the end
        elif name in ("-r", "--report-chars"):
            opts = replace(opts, reportchars=value)
        elif name == "--tb":
            opts = replace(opts, tbstyle=value)
        elif name == "--verbosity":
            opts = replace(opts, verbosity=_whole(value, opts.verbosity))
        elif name == "--durations":
            opts = replace(opts, durations=_whole(value, opts.durations))
        elif name == "--durations-min":
            opts = replace(opts, durations_min=_seconds(value, opts.durations_min))
        elif name in ("-c", "--config-file", "--inifile"):
            found.inifile = value
        elif name == "--rootdir":
            found.rootdir = value
        elif name in ("-o", "--override-ini") and value.startswith("addopts="):
            found.addopts_override = value.removeprefix("addopts=")
    found.options = opts
    return found


def _tokens(args: Sequence[str]) -> Iterator[tuple[str, str | None]]:
    """`(option, value)` for each option (value None for a flag), `("", arg)` for the rest.

    Short flags may be bundled (`-vv`, `-xvs`) and end with one that takes a value (`-vra`).
    """
    rest = iter(args)
    for arg in rest:
        if arg == "--":
            yield from (("", positional) for positional in rest)
        elif arg.startswith("--"):
            name, equals, value = arg.partition("=")
            if name in _LONG_WITH_VALUE:
                yield name, value if equals else next(rest, None)
            else:
                yield name, None
        elif arg.startswith("-") and len(arg) > 1:
            for i, char in enumerate(arg[1:], start=1):
                if char in _SHORT_WITH_VALUE:
                    yield f"-{char}", arg[i + 1 :] or next(rest, None)
                    break
                if char not in _SHORT_FLAGS:
                    break  # a plugin's short option: the rest of the word is its business
                yield f"-{char}", None
        else:
            yield "", arg


# A value pytest would refuse keeps the one before it: the workers' pytest reports the error.


def _whole(text: str, default: _T) -> int | _T:
    try:
        return int(text)
    except ValueError:
        return default


def _seconds(text: str, default: _T) -> float | _T:
    try:
        return float(text)
    except ValueError:
        return default
