"""Messages between a dtf pytest child process and its parent, as JSON lines.

The child runs in the project's own interpreter, which need not have dtf or any of its
dependencies, so this module uses the standard library only; the parent reads the same
classes.  It deliberately mirrors `events.catalogue` types instead of importing them: the
user's project may have its own top-level `events` package.

Every message is one JSON object with a `type` key ("ready", "case", "done"; "run" from the
parent), as `msgspec`'s tagged unions would write it, so a recorded session reads the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from typing import Any, Literal

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed", "error"]
OUTCOMES = frozenset(("passed", "failed", "skipped", "xfailed", "xpassed", "error"))

# Environment variables naming the child's dedicated channels.
FDS_ENV = "DTF_RUNNER_FDS"  # session mode: "<command fd>,<result fd>"
OUT_ENV = "DTF_RUNNER_OUT"  # collect mode: path of the JSON document to write
PARENT_ENV = "DTF_RUNNER_PARENT"  # pid of the process that started the child


class WireError(ValueError):
    """A line or document that is not a message of this protocol."""


@dataclass(frozen=True)
class WireCase:
    """One item's (or one collector's) result; the same fields as `CaseResult`.

    `tally` is pytest's own count of the item's reports by category (its phases, subtests,
    reruns), e.g. {"passed": 1, "error": 1} for a test whose teardown failed, or
    {"passed": 1, "failed": 1, "subtests passed": 3}; empty when it is just {outcome: 1}.
    """

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    message: str = ""
    longrepr: str = ""
    tally: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"nodeid": self.nodeid, "outcome": self.outcome}
        for name in ("duration", "message", "longrepr", "tally"):
            value = getattr(self, name)
            if value:
                doc[name] = value
        return doc

    @classmethod
    def from_json(cls, doc: object) -> WireCase:
        if not isinstance(doc, dict) or doc.get("outcome") not in OUTCOMES:
            raise WireError(f"not a case: {doc!r:.200}")
        try:
            case = cls(**{f.name: doc[f.name] for f in fields(cls) if f.name in doc})
        except TypeError as exc:
            raise WireError(f"not a case: {exc}") from None
        if not isinstance(case.nodeid, str) or not isinstance(case.duration, int | float):
            raise WireError(f"not a case: {doc!r:.200}")
        return case


@dataclass(frozen=True)
class WireItem:
    """One collected item and what its `dtf_requires` marker asks for (checked already)."""

    nodeid: str
    requirements: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Collected:
    """The collect-mode document: items, module-level skips and collection errors."""

    items: tuple[WireItem, ...] = ()
    skipped: tuple[WireCase, ...] = ()
    errors: tuple[WireCase, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "items": [{"nodeid": i.nodeid, "requirements": i.requirements} for i in self.items],
            "skipped": [c.to_json() for c in self.skipped],
            "errors": [c.to_json() for c in self.errors],
        }

    @classmethod
    def from_json(cls, doc: Any) -> Collected:
        try:
            return cls(
                items=tuple(WireItem(i["nodeid"], i.get("requirements", {})) for i in doc["items"]),
                skipped=tuple(WireCase.from_json(c) for c in doc["skipped"]),
                errors=tuple(WireCase.from_json(c) for c in doc["errors"]),
            )
        except (KeyError, TypeError) as exc:
            raise WireError(f"unreadable collection: {exc!r}") from None

    def to_bytes(self) -> bytes:
        return json.dumps(self.to_json()).encode()

    @classmethod
    def from_bytes(cls, data: bytes) -> Collected:
        try:
            doc = json.loads(data)
        except (ValueError, RecursionError) as exc:
            raise WireError(f"unreadable collection: {exc}") from None
        return cls.from_json(doc)


# --- session mode: parent -> child -------------------------------------------------------


@dataclass(frozen=True)
class RunBatch:
    """Run these collected node ids, in order, as one batch."""

    nodeids: tuple[str, ...]


# --- session mode: child -> parent -------------------------------------------------------


@dataclass(frozen=True)
class Ready:
    """Sent once, after collection: what the session can run and what failed to import, and
    the collection as collect mode would have written it (so that a session started early
    can stand in for a collect run)."""

    nodeids: tuple[str, ...] = ()
    errors: tuple[WireCase, ...] = ()
    collection: Collected = field(default_factory=Collected)


@dataclass(frozen=True)
class CaseDone:
    """Sent after each item of a batch has run (setup, call and teardown)."""

    case: WireCase


@dataclass(frozen=True)
class BatchDone:
    """Sent after the last item of a batch."""


ChildMessage = Ready | CaseDone | BatchDone


def encode(message: ChildMessage | RunBatch) -> bytes:
    """One message as a JSON line (with its newline)."""
    doc: dict[str, Any]
    if isinstance(message, RunBatch):
        doc = {"type": "run", "nodeids": list(message.nodeids)}
    elif isinstance(message, CaseDone):
        doc = {"type": "case", "case": message.case.to_json()}
    elif isinstance(message, Ready):
        doc = {
            "type": "ready",
            "nodeids": list(message.nodeids),
            "errors": [e.to_json() for e in message.errors],
            "collection": message.collection.to_json(),
        }
    else:
        doc = {"type": "done"}
    return json.dumps(doc).encode() + b"\n"


def decode(line: bytes) -> ChildMessage | RunBatch:
    """The message of one JSON line; raises WireError for anything else."""
    try:
        doc = json.loads(line)
        kind = doc["type"]
        if kind == "case":
            return CaseDone(WireCase.from_json(doc["case"]))
        if kind == "done":
            return BatchDone()
        if kind == "run":
            return RunBatch(tuple(str(n) for n in doc["nodeids"]))
        if kind == "ready":
            errors = tuple(WireCase.from_json(e) for e in doc.get("errors", ()))
            collection = Collected.from_json(doc.get("collection", Collected().to_json()))
            return Ready(tuple(str(n) for n in doc["nodeids"]), errors, collection)
    except (ValueError, KeyError, TypeError, RecursionError) as exc:  # JSONDecodeError: ValueError
        raise WireError(f"unreadable message: {exc}") from None
    raise WireError(f"unknown message type {kind!r}")
