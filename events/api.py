"""Request/reply messages between dtf's processes that are not events (never stored).

`dtf.api.plan`: before splitting a suite, `dtf run` asks any coordinator (a queue group)
for the recorded durations of its tests, the fleet's free capacity, and which of the run's
requirements no worker has ever offered.  The heartbeat is the
value a worker puts under its id in the heartbeat bucket.
"""

from __future__ import annotations

import msgspec

from events.catalogue import Requirements

PLAN_SUBJECT = "dtf.api.plan"


class PlanRequest(msgspec.Struct):
    nodeids: list[str] = []
    requirements: list[Requirements] = []  # the distinct ones of the run's tests or commands


class PlanReply(msgspec.Struct):
    durations: dict[str, float]
    slots: int
    workers: int
    # Of the request's requirements, those no worker that ever registered has met.
    never_offered: list[Requirements] = []


class Heartbeat(msgspec.Struct, frozen=True):
    """What a worker's heartbeat key holds: when it was written, the tasks it runs, and how
    loaded its machine is (percent; -1 where unknown), for the dashboard's sparklines."""

    at: float
    running: tuple[str, ...] = ()
    cpu: float = -1.0
    memory: float = -1.0
    gpu: float = -1.0
    server: str = ""  # host:port of the NATS server the worker is connected to


class CoverageUpload(msgspec.Struct, frozen=True):
    """A pytest session's coverage data as its worker ships it (object store, dtf_coverage):
    the coverage.py data file, and the directory its paths are under (the worker's checkout),
    which the client maps onto its own tree."""

    root: str
    data: bytes
