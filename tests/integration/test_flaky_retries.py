"""Attempts lost to infrastructure are not test outcomes (issue #16 A): an event sequence
as a coordinator and its workers record it, applied to a real DuckDB file by the projector,
then `dtf report` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from events.catalogue import (
    AnyEvent,
    Capabilities,
    CaseResult,
    RunSubmitted,
    TaskAssigned,
    TaskCompleted,
    TaskFailed,
    TaskQueued,
    TaskRetryScheduled,
    TaskSpeculated,
    TaskStarted,
    WorkerLost,
    WorkerRegistered,
)
from events.codec import encode
from events.subjects import subject_of
from projections.pipeline.frames import Delivered
from projections.pipeline.projector import Projector
from tests.support.paths import ROOT

COMMIT = "6c1fac46a21045fa65fbc2a956182c6ecc45819e"
LOST = tuple(f"tests/test_lost.py::test_{i}" for i in range(3))  # held by the worker that died
HUNG = ("tests/test_hang.py::test_hangs", "tests/test_hang.py::test_after")
DOOMED = "tests/test_doomed.py::test_never_gets_a_worker"
TWIN = "tests/test_slow.py::test_straggles"  # its speculative twin crashes, the original passes
FLAKY = "tests/test_flaky.py::test_sometimes"


class Log:
    """Builds a stream of events with increasing times, as a coordinator would record it."""

    def __init__(self) -> None:
        self.events: list[AnyEvent] = []
        self.at = time.time() - 3600  # inside the report's default period

    def add(self, cls: type, by: str = "", **fields: object) -> None:
        """Written by `by`, else by the worker it names, else by the coordinator."""
        self.at += 1.0
        actor = by or str(fields.get("worker_id", "coord-1"))
        self.events.append(cls(id=f"e{len(self.events)}", at=self.at, actor=actor, **fields))

    def run(self, run_id: str, tasks: dict[str, tuple[str, ...]], **limits: int) -> None:
        self.add(
            RunSubmitted,
            run_id=run_id,
            task_ids=tuple(tasks),
            total_cases=sum(len(n) for n in tasks.values()),
            labels={"commit": COMMIT, "branch": "main"},
        )
        for task_id, nodeids in tasks.items():
            self.add(
                TaskQueued, task_id=task_id, run_id=run_id, kind="pytest", nodeids=nodeids, **limits
            )

    def attempt(self, task_id: str, worker: str, attempt: int) -> None:
        self.add(TaskAssigned, task_id=task_id, worker_id=worker, attempt=attempt, term=1)
        self.add(TaskStarted, task_id=task_id, worker_id=worker, attempt=attempt)

    def completed(self, task_id: str, worker: str, attempt: int, *cases: CaseResult) -> None:
        failed = any(c.outcome in ("failed", "error") for c in cases)
        self.add(
            TaskCompleted,
            task_id=task_id,
            worker_id=worker,
            attempt=attempt,
            outcome="failed" if failed else "passed",
            cases=cases,
        )

    def failed(
        self,
        task_id: str,
        worker: str,
        attempt: int,
        category: str,
        cases: tuple[CaseResult, ...],
        message: str = "",
        by: str = "",
    ) -> None:
        message = message or cases[0].message  # the coordinator repeats it on every case
        self.add(
            TaskFailed,
            by,
            task_id=task_id,
            worker_id=worker,
            attempt=attempt,
            category=category,
            message=message,
            cases=cases,
            term=1,
        )

    def retry(self, task_id: str, attempt: int, avoid: str) -> None:
        self.add(TaskRetryScheduled, task_id=task_id, attempt=attempt, avoid=(avoid,), term=1)


def passed(*nodeids: str) -> tuple[CaseResult, ...]:
    return tuple(CaseResult(n, "passed", 0.01) for n in nodeids)


def errors(message: str, *nodeids: str) -> tuple[CaseResult, ...]:
    return tuple(CaseResult(n, "error", message=message) for n in nodeids)


def recorded_log() -> list[AnyEvent]:
    """Two runs of one commit.

    Run r1: w1 is lost while it runs r1.0 (the coordinator fails its tests as infrastructure
    errors) and the retry passes on w2; r1.1 hangs on its first test, times out, and passes on
    retry; r1.2 loses its worker on both of its two attempts (a final failure); r1.3 has the
    test that fails; r1.4 straggles, and its speculative twin's pytest crashes before the
    original passes.  Run r2: the failed test passes (a genuine flake: the same commit).
    """
    log = Log()
    for worker in ("w1", "w2"):
        caps = Capabilities(platform="linux", hostname=f"{worker}.example", cpus=8, memory_gb=32)
        log.add(WorkerRegistered, worker_id=worker, capabilities=caps, slots=2)
    tasks = {"r1.0": LOST, "r1.1": HUNG, "r1.2": (DOOMED,), "r1.3": (FLAKY,), "r1.4": (TWIN,)}
    log.run("r1", tasks, max_attempts=2)
    log.attempt("r1.0", "w1", 1)
    log.attempt("r1.2", "w1", 1)
    log.attempt("r1.1", "w2", 1)
    log.attempt("r1.3", "w2", 1)
    log.attempt("r1.4", "w2", 1)
    log.add(TaskSpeculated, task_id="r1.4", worker_id="w1", attempt=2, term=1)
    log.failed("r1.4", "w1", 2, "infrastructure", errors("pytest process was killed", TWIN))
    log.add(WorkerLost, worker_id="w1", reason="no heartbeat for 30s", term=1)
    lost = "worker w1 lost (no heartbeat for 30s)"
    log.failed("r1.0", "w1", 1, "infrastructure", errors(lost, *LOST), by="coord-1")
    log.failed("r1.2", "w1", 1, "infrastructure", errors(lost, DOOMED), by="coord-1")
    log.retry("r1.0", 1, "w1")
    log.retry("r1.2", 1, "w1")
    where = f"timeout after 60s while running {HUNG[0]}"  # as the worker's runner says it
    hang = (
        CaseResult(HUNG[0], "error", message="timeout after 60s"),
        CaseResult(HUNG[1], "error", message=f"not run: {where}"),
    )
    log.failed("r1.1", "w2", 1, "timeout", hang, where)
    log.retry("r1.1", 1, "w2")
    log.completed("r1.3", "w2", 1, CaseResult(FLAKY, "failed", 0.2, "assert 1 == 2"))
    log.completed("r1.4", "w2", 1, *passed(TWIN))
    log.attempt("r1.0", "w2", 2)
    log.completed("r1.0", "w2", 2, *passed(*LOST))
    log.attempt("r1.1", "w2", 2)
    log.completed("r1.1", "w2", 2, *passed(*HUNG))
    log.attempt("r1.2", "w2", 2)
    log.failed("r1.2", "w2", 2, "infrastructure", errors("pytest process was killed", DOOMED))
    log.run("r2", {"r2.0": (FLAKY, *LOST)})
    log.attempt("r2.0", "w2", 1)
    log.completed("r2.0", "w2", 1, *passed(FLAKY, *LOST))
    return log.events


def deliveries(events: list[AnyEvent]) -> Iterator[Delivered]:
    for seq, event in enumerate(events, start=1):
        yield Delivered(seq, subject_of(event), encode(event))


def query(db: Path, sql: str) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """The recorded log applied in two projector sessions, split right after the first
    failures, so the retrying tasks are also reloaded from the file (`projector_tasks`)."""
    path = tmp_path / "dtf.duckdb"
    records = list(deliveries(recorded_log()))
    split = next(i for i, d in enumerate(records) if d.subject.endswith(".retry_scheduled"))
    for part in (records[:split], records[split:]):
        with Projector(path) as projector:
            projector.apply(part)
    return path


def test_retried_attempts_get_no_test_case_rows(db: Path) -> None:
    rows = query(db, "SELECT task_id, attempt, nodeid, outcome FROM test_cases ORDER BY ALL")
    assert rows == sorted(
        [
            *(("r1.0", 2, n, "passed") for n in LOST),  # not the error rows of attempt 1
            *(("r1.1", 2, n, "passed") for n in HUNG),  # a retried timeout: the same
            ("r1.2", 2, DOOMED, "error"),  # attempts exhausted: that error is the result
            ("r1.3", 1, FLAKY, "failed"),
            ("r1.4", 1, TWIN, "passed"),  # not the twin's error: the task went on
            ("r2.0", 1, FLAKY, "passed"),
            *(("r2.0", 1, n, "passed") for n in LOST),
        ]
    )
    # The lost attempts are still on record where they belong: attempts and errors.
    assert query(
        db, "SELECT task_id, attempt, category FROM attempts WHERE outcome = 'error' ORDER BY ALL"
    ) == [
        ("r1.0", 1, "infrastructure"),
        ("r1.1", 1, "timeout"),
        ("r1.2", 1, "infrastructure"),
        ("r1.2", 2, "infrastructure"),
    ]
    hung = query(db, "SELECT nodeid, message FROM errors WHERE category = 'timeout' ORDER BY ALL")
    assert (HUNG[0], "timeout after 60s") in hung  # which test hung is not lost


def dtf_report(db: Path, *args: str) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "dtf", "report", "--db", str(db), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_report_lists_only_the_genuine_flake(db: Path) -> None:
    doc = json.loads(dtf_report(db, "--format", "json"))
    flaky = doc["tests"]["flaky"]
    assert [t["nodeid"] for t in flaky] == [FLAKY]
    assert flaky[0]["flaky_commits"] == [COMMIT]
    assert [t["nodeid"] for t in doc["tests"]["failing"]] == [DOOMED]

    md = dtf_report(db)
    sections = {part.splitlines()[0]: part for part in md.split("\n## ")[1:]}
    assert FLAKY in sections["Flaky tests"]
    assert not any(n in sections["Flaky tests"] for n in (*LOST, *HUNG, DOOMED, TWIN))
