"""Report files for a finished run: JUnit XML as pytest writes it, and dtf's JSON document.

Both are written atomically (a temporary file in the target directory, then `os.replace`),
so a reader never sees half a report, and the target's parent directories are created.

The JUnit XML follows pytest's `_pytest/junitxml.py` with its default `xunit2` family::

    <?xml version="1.0" encoding="utf-8"?>
    <testsuites name="dtf tests">
      <testsuite name="dtf" errors="1" failures="1" skipped="2" tests="5" time="1.234"
                 timestamp="2024-05-01T12:00:00+02:00" hostname="ci-7">
        <testcase classname="tests.test_a.TestX" name="test_y[1]" time="0.010"/>
        <testcase classname="tests.test_a" name="test_f" time="0.020">
          <failure message="assert 1 == 2">...longrepr...</failure>
        </testcase>
        ... <error message=...>, <skipped type="pytest.skip" message=...>,
        <skipped type="pytest.xfail" message=...> for xfailed; xpassed is a plain passed case.
      </testsuite>
    </testsuites>

The JSON document is a `RunReport` (see its docstring for the fields).
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import msgspec

from events.catalogue import CaseResult, Outcome

REPORT_VERSION = 1

# pytest's budget for the `message` attribute of <failure> and <error>; the element text
# always holds the full report.
MESSAGE_ATTR_BUDGET = 500

# Characters XML 1.0 cannot hold (pytest's `bin_xml_escape` also refuses DEL); a longrepr
# with ANSI escapes would otherwise make the whole file unparsable.
_ILLEGAL_XML = re.compile(
    "[^\u0009\u000a\u000d\u0020-\u007e\u0080-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
)


# --- JUnit XML ------------------------------------------------------------------------


def junit_names(nodeid: str) -> tuple[str, str]:
    """The `(classname, name)` pytest's junitxml gives a node id.

    "tests/test_a.py::TestX::test_y[1]" becomes ("tests.test_a.TestX", "test_y[1]"); a node id
    without "::" (a collection error) becomes ("", "tests.test_a").
    """
    path, sep, tail = nodeid.partition("::")
    names = [path]
    if sep:
        # The parameter id is peeled off first: it may itself hold "::", "/" or ".".
        name_part, bracket, params = tail.partition("[")
        names.extend(name_part.split("::"))
        if bracket:
            names[-1] += f"[{params.removesuffix(']')}]"
    names[0] = re.sub(r"\.py$", "", names[0].replace("/", "."))
    return ".".join(names[:-1]), names[-1]


def write_junit_xml(
    path: str | os.PathLike[str],
    cases: Iterable[CaseResult],
    *,
    suite_name: str = "dtf",
    duration: float,
    hostname: str = "",
    timestamp: float | datetime.datetime,
) -> None:
    """Write `cases` as one JUnit XML test suite, the way `pytest --junit-xml` does.

    `timestamp` (epoch seconds or a datetime) is when the run started, written in local time
    with its offset as pytest does; `hostname` is left out when empty.
    """
    stats = {"failure": 0, "error": 0, "skipped": 0}
    testcases = []
    for case in cases:
        testcase = _testcase(case)
        for child in testcase:
            stats[child.tag] += 1
        testcases.append(testcase)

    if isinstance(timestamp, datetime.datetime):
        started = timestamp
    else:
        started = datetime.datetime.fromtimestamp(timestamp, tz=datetime.UTC)
    suite = ET.Element(
        "testsuite",
        name=suite_name,
        errors=str(stats["error"]),
        failures=str(stats["failure"]),
        skipped=str(stats["skipped"]),
        tests=str(len(testcases)),
        time=f"{duration:.3f}",
        timestamp=started.astimezone().isoformat(),
    )
    if hostname:
        suite.set("hostname", hostname)
    suite.extend(testcases)
    root = ET.Element("testsuites", name=f"{suite_name} tests")
    root.append(suite)
    text = '<?xml version="1.0" encoding="utf-8"?>' + ET.tostring(root, encoding="unicode")
    write_atomically(path, text.encode("utf-8"))


def _testcase(case: CaseResult) -> ET.Element:
    classname, name = junit_names(case.nodeid)
    testcase = ET.Element(
        "testcase",
        classname=_xml_safe(classname),
        name=_xml_safe(name),
        time=f"{case.duration:.3f}",
    )
    details = _xml_safe(case.longrepr or case.message)
    child: ET.Element | None = None
    if case.outcome == "failed":
        child = ET.Element("failure", message=_message_attr(case.message))
        child.text = details
    elif case.outcome == "error":
        child = ET.Element("error", message=_message_attr(case.message))
        child.text = details
    elif case.outcome == "skipped":
        reason = _xml_safe(case.message.removeprefix("Skipped: "))
        child = ET.Element("skipped", type="pytest.skip", message=reason)
        child.text = details
    elif case.outcome == "xfailed":
        # pytest writes no text for an xfail, only its reason.
        reason = _xml_safe(case.message.removeprefix("reason: "))
        child = ET.Element("skipped", type="pytest.xfail", message=reason)
    if child is not None:
        testcase.append(child)
    return testcase


def _xml_safe(text: str) -> str:
    """`text` with characters XML cannot hold shown as "#xNN", like pytest's bin_xml_escape."""

    def replace(match: re.Match[str]) -> str:
        code = ord(match.group())
        return f"#x{code:02X}" if code <= 0xFF else f"#x{code:04X}"

    return _ILLEGAL_XML.sub(replace, text)


def _message_attr(message: str, budget: int = MESSAGE_ATTR_BUDGET) -> str:
    """`message` cut to whole lines within `budget`, with a note saying what was dropped."""
    lines = message.splitlines() or [""]
    kept: list[str] = []
    size = 0
    for line in lines:
        if kept and size + len(line) + 1 > budget:
            break
        kept.append(line)
        size += len(line) + 1
    shortened = "\n".join(kept)
    first_line_cut = len(shortened) > budget
    if first_line_cut:
        shortened = shortened[:budget] + "..."
    remaining = len(lines) - len(kept)
    if remaining:
        note = f"+{remaining} more line{'s' if remaining > 1 else ''}"
    elif first_line_cut:
        note = "truncated"
    else:
        return _xml_safe(message)
    return _xml_safe(f"{shortened}\n[{note}; full report in element text]")


# --- JSON -----------------------------------------------------------------------------


class CaseReport(msgspec.Struct, frozen=True):
    """One test case in the JSON report; every field is always present."""

    nodeid: str
    outcome: Outcome
    duration: float
    message: str
    longrepr: str
    reruns: int = 0  # failed runs before the outcome; passed with reruns > 0 is flaky
    # pytest's own count of the item's reports when it is not just {outcome: 1} (subtests,
    # a teardown error beside a pass): what plain pytest's final line counts.
    tally: dict[str, int] = {}


class RunReport(msgspec.Struct, frozen=True, kw_only=True):
    """dtf's JSON report of a finished run, one object::

        {"version": 1, "run_id": "...", "exit_code": 1, "duration": 12.5,
         "counts": {"failed": 1, "passed": 10}, "total": 11,
         "cases": [{"nodeid": "tests/test_a.py::test_x", "outcome": "passed",
                    "duration": 0.01, "message": "", "longrepr": ""}, ...],
         "extra": {...}}

    `version` changes only when a field changes meaning or goes away; new fields are added
    with defaults.  `counts` uses pytest's keys (failed, passed, skipped, xfailed, xpassed,
    error), non-zero ones only; `exit_code` is pytest's; `duration` is wall seconds; `extra`
    is whatever the caller adds (labels, hosts, ...).
    """

    version: int = REPORT_VERSION
    run_id: str
    exit_code: int
    duration: float
    counts: dict[str, int]
    total: int
    cases: tuple[CaseReport, ...]
    extra: dict[str, Any] = {}


def write_json(
    path: str | os.PathLike[str],
    run_id: str,
    cases: Iterable[CaseResult],
    counts: Mapping[str, int],
    duration: float,
    exit_code: int,
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Write the run as a `RunReport` JSON document."""
    entries = tuple(
        CaseReport(c.nodeid, c.outcome, c.duration, c.message, c.longrepr, c.reruns, c.tally)
        for c in cases
    )
    report = RunReport(
        run_id=run_id,
        exit_code=exit_code,
        duration=duration,
        counts=dict(counts),
        total=len(entries),
        cases=entries,
        extra=dict(extra or {}),
    )
    write_atomically(path, msgspec.json.format(msgspec.json.encode(report), indent=2) + b"\n")


def read_json(path: str | os.PathLike[str]) -> RunReport:
    """Read back a report written by `write_json`."""
    return msgspec.json.decode(Path(path).read_bytes(), type=RunReport)


# --- files ----------------------------------------------------------------------------


def write_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Replace `path` with `data` in one step, creating its parent directories."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        # mkstemp makes the file private (0600); a report is meant to be shared.
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
