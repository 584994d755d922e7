"""Messages between a dtf pytest child process and its parent, as tagged msgspec Structs.

The child imports this module, so it deliberately mirrors `events.catalogue` types instead
of importing them: the user's project may have its own top-level `events` package.
"""

from __future__ import annotations

import sys
from typing import Annotated, Literal

import msgspec

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed", "error"]
# A marker's numbers become a TaskQueued event: a negative count is a task no worker can take,
# and NaN or infinity cannot be written (NaN fails `ge`, infinity is above the largest float).
Count = Annotated[int, msgspec.Meta(ge=0)]
Amount = Annotated[float, msgspec.Meta(ge=0, le=sys.float_info.max)]

# Environment variables naming the child's dedicated channels.
FDS_ENV = "DTF_RUNNER_FDS"  # session mode: "<command fd>,<result fd>"
OUT_ENV = "DTF_RUNNER_OUT"  # collect mode: path of the JSON document to write
PARENT_ENV = "DTF_RUNNER_PARENT"  # pid of the process that started the child


class WireRequirements(msgspec.Struct, frozen=True, omit_defaults=True, forbid_unknown_fields=True):
    """The keyword arguments of `@pytest.mark.dtf_requires(...)`, validated."""

    platform: str = ""
    cpus: Count = 0
    memory_gb: Amount = 0.0
    gpus: Count = 0
    gpu_vendor: str = ""
    gpu_memory_gb: Amount = 0.0
    labels: tuple[str, ...] = ()


class WireCase(msgspec.Struct, frozen=True, omit_defaults=True):
    """One item's (or one collector's) result; the same fields as `CaseResult`."""

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    message: str = ""
    longrepr: str = ""


class WireItem(msgspec.Struct, frozen=True, omit_defaults=True):
    nodeid: str
    requirements: WireRequirements = WireRequirements()


class Collected(msgspec.Struct, frozen=True, omit_defaults=True):
    """The collect-mode document: items, module-level skips and collection errors."""

    items: tuple[WireItem, ...] = ()
    skipped: tuple[WireCase, ...] = ()
    errors: tuple[WireCase, ...] = ()


# --- session mode: parent -> child -------------------------------------------------------


class RunBatch(msgspec.Struct, frozen=True, tag="run"):
    """Run these collected node ids, in order, as one batch."""

    nodeids: tuple[str, ...]


# --- session mode: child -> parent -------------------------------------------------------


class Ready(msgspec.Struct, frozen=True, tag="ready"):
    """Sent once, after collection: what the session can run and what failed to import."""

    nodeids: tuple[str, ...] = ()
    errors: tuple[WireCase, ...] = ()


class CaseDone(msgspec.Struct, frozen=True, tag="case"):
    """Sent after each item of a batch has run (setup, call and teardown)."""

    case: WireCase


class BatchDone(msgspec.Struct, frozen=True, tag="done"):
    """Sent after the last item of a batch."""


ChildMessage = Ready | CaseDone | BatchDone
