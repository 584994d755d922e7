"""One readable line per stored message, for every reader that shows the log to a person:
`dtf show`, `dtf events tail` and the dashboard's audit trails."""

from __future__ import annotations

import datetime as dt

import msgspec

from events.records import Rejected, Stored
from events.subjects import ROOT

# Fields that identify the aggregate or repeat the envelope: not worth a column.
_QUIET = {"id", "at", "actor", "v", "run_id", "task_id", "worker_id", "cases", "precollected"}


def _stamp(at: float) -> str:
    return dt.datetime.fromtimestamp(at).strftime("%H:%M:%S.%f")[:-3] if at else "?" * 12


def describe(rec: Stored) -> str:
    """One readable line for a message: sequence, time, type, actor, interesting fields."""
    target = rec.subject.removeprefix(f"{ROOT}.")
    if isinstance(rec, Rejected):
        return f"{rec.seq:>7} {_stamp(rec.at)} {'REJECTED':<22} {target:<44} {rec.reason}"
    event = rec.event
    stamp = _stamp(event.at)
    tag = type(event).__struct_config__.tag
    fields = []
    for name in event.__struct_fields__:
        if name in _QUIET:
            continue
        value = getattr(event, name)
        if value in ((), {}, "", 0, None) or (name == "attempt" and value == 1):
            continue
        if isinstance(value, tuple) and len(value) > 3:
            value = f"[{len(value)} items]"
        elif isinstance(value, msgspec.Struct):
            value = msgspec.json.encode(value).decode()
        fields.append(f"{name}={value}")
    cases = getattr(event, "cases", ())
    if cases:
        counts: dict[str, int] = {}
        for case in cases:
            counts[case.outcome] = counts.get(case.outcome, 0) + 1
        fields.append("cases=" + ",".join(f"{k}:{v}" for k, v in sorted(counts.items())))
    if rec.signer is not None:
        fields.append(f"signed-by={rec.signer.name}({rec.signer.role})")
    return f"{rec.seq:>7} {stamp} {tag:<22} {target:<44} {event.actor}  {' '.join(fields)}"
