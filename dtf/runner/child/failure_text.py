"""Shortening pytest's failure text: bounded long text, and a one-line summary of it."""

from __future__ import annotations

import re

LONGREPR_LIMIT = 8 * 1024
_MARKER = "\n... [{} characters cut] ...\n"
# pytest marks the exception line of a traceback with "E   ".
_EXCEPTION_LINE = re.compile(r"^E\s+(\S.*)$")
# The first line of an exception as Python prints it under a traceback: "pkg.SomeError: ...".
_RAISED = re.compile(r"^[A-Za-z_][\w.]*(?:Error|Exception|Warning|Exit|Interrupt)\b(?::.*)?$")
_INTERNAL = "INTERNALERROR>"
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

    Prefers the last `E   SomeError: ...` line (after the first line when that adds context,
    as in "ImportError while loading conftest"), then the first line of the last exception of
    a Python traceback (an INTERNALERROR's too), then a usage `error:` line, then the last
    non-blank line.  The cause is never the part cut off: a long context line is.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return ""
    exceptions = [m.group(1) for line in lines if (m := _EXCEPTION_LINE.match(line))]
    if exceptions:
        head = lines[0].strip()
        found = exceptions[-1]
        if head.startswith(("ImportError while", "ERROR")) and head != found:
            return _with_context(found, head, limit)
        return _clip(found, limit)
    raised = [line for line in lines if _RAISED.match(line.removeprefix(_INTERNAL).strip())]
    if raised:
        return _clip(raised[-1].removeprefix(_INTERNAL).strip(), limit)
    for line in lines:
        if (m := _ERROR_LINE.search(line)) and not m.group(1).startswith("usage:"):
            return _clip(m.group(1), limit)
    return _clip(lines[-1].strip(), limit)


def _with_context(cause: str, context: str, limit: int) -> str:
    """`context cause`, the context shortened first when the two do not fit."""
    room = limit - len(cause) - 1
    if room < 20:
        return _clip(cause, limit)
    return f"{_clip(context, room)} {cause}"


def _clip(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 3] + "..."
