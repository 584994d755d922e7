"""Where in the source a failing test failed, for annotations on the diff."""

from __future__ import annotations

import re

from events.catalogue import CaseResult

# pytest's long tracebacks end each entry with "path/to/file.py:LINE: ExceptionName"; the
# path is relative to the rootdir, or absolute where the worker ran the code elsewhere.
_ENTRY = re.compile(r"^(?P<path>\S[^:\n]*?\.py):(?P<line>\d+): ", re.MULTILINE)


def test_file(nodeid: str) -> str:
    """The file part of a node id: `tests/test_a.py::test_x[1]` is `tests/test_a.py`."""
    return nodeid.split("::", 1)[0]


def location(case: CaseResult) -> tuple[str, int | None]:
    """`(file, line)` of the failure: the test's file, and the last traceback entry in that
    file (the line of the test that failed, not of a helper it called); None when the report
    names no line in it."""
    path = test_file(case.nodeid)
    line = None
    for entry in _ENTRY.finditer(case.longrepr):
        named = entry["path"].replace("\\", "/")
        if named == path or named.endswith("/" + path):
            line = int(entry["line"])
    return path, line
