"""Shortening pytest's failure text: bounded long text, and a one-line summary of it."""

from __future__ import annotations

import re

LONGREPR_LIMIT = 8 * 1024
_MARKER = "\n... [{} characters cut] ...\n"
# pytest marks the exception line of a traceback with "E   ".
_EXCEPTION_LINE = re.compile(r"^E\s+(\S.*)$")
# argparse and pytest's own usage errors.
_ERROR_LINE = re.compile(r"(?:^ERROR:|\berror:)\s*(\S.*)$")


def truncate_middle(text: str, limit: int = LONGREPR_LIMIT) -> str:
    """`text` if it fits in `limit` characters, else its head and tail around a marker.

    The head holds where a failure happened and the tail the exception, so both are kept.
    """
    if len(text) <= limit:
        return text
    keep = limit - len(_MARKER.format(len(text)))
    head = keep // 2
    tail = keep - head
    return text[:head] + _MARKER.format(len(text) - keep) + text[-tail:]


def first_line(text: str, limit: int = 300) -> str:
    """The first non-blank line of `text`, at most `limit` characters."""
    for line in text.splitlines():
        if line.strip():
            return _clip(line.strip(), limit)
    return ""


def summarize(text: str, limit: int = 300) -> str:
    """One line saying what went wrong in pytest output or a traceback.

    Prefers the last `E   SomeError: ...` line (with the first line when that adds context,
    as in "ImportError while loading conftest"), then a usage `error:` line, then the last
    non-blank line.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    exceptions = [m.group(1) for line in lines if (m := _EXCEPTION_LINE.match(line))]
    if exceptions:
        head = lines[0].strip()
        found = exceptions[-1]
        if head.startswith(("ImportError while", "ERROR", "Traceback")) or head == found:
            return _clip(found if head.startswith("Traceback") else f"{head} {found}", limit)
        return _clip(found, limit)
    for line in lines:
        if (m := _ERROR_LINE.search(line)) and not m.group(1).startswith("usage:"):
            return _clip(m.group(1), limit)
    return _clip(lines[-1].strip(), limit)


def _clip(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."
