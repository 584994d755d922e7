"""The DuckDB read models' tables: the contract between the projector and the analyses.

Every table is derived from the event stream alone; deleting the file and replaying gives
the same rows.  Times are epoch seconds (DOUBLE) as the events carry them.  `projector_state`
holds the last applied stream sequence, written in the same transaction as the rows.
"""

from __future__ import annotations

TABLES: dict[str, str] = {
    "projector_state": """
        CREATE TABLE IF NOT EXISTS projector_state (
            name VARCHAR PRIMARY KEY,
            last_seq BIGINT NOT NULL
        )""",
    "projector_tasks": """
        CREATE TABLE IF NOT EXISTS projector_tasks (
            task_id VARCHAR PRIMARY KEY,
            entry JSON
        )""",
    "rejected_events": """
        CREATE TABLE IF NOT EXISTS rejected_events (
            seq BIGINT PRIMARY KEY,
            subject VARCHAR,
            reason VARCHAR,
            raw VARCHAR
        )""",
    "runs": """
        CREATE TABLE IF NOT EXISTS runs (
            run_id VARCHAR PRIMARY KEY,
            submitted_at DOUBLE,
            actor VARCHAR,
            bundle VARCHAR,
            root VARCHAR,
            commit VARCHAR,
            branch VARCHAR,
            labels JSON,
            task_count INTEGER,
            total_cases INTEGER,
            finished_at DOUBLE,
            cancelled BOOLEAN,
            counts JSON
        )""",
    "tasks": """
        CREATE TABLE IF NOT EXISTS tasks (
            task_id VARCHAR PRIMARY KEY,
            run_id VARCHAR,
            kind VARCHAR,
            command VARCHAR,
            case_count INTEGER,
            priority INTEGER,
            timeout DOUBLE,
            expected_duration DOUBLE,
            requirements JSON,
            status VARCHAR,
            worker_id VARCHAR,
            attempt INTEGER,
            queued_at DOUBLE,
            started_at DOUBLE,
            finished_at DOUBLE,
            category VARCHAR,
            message VARCHAR
        )""",
    "attempts": """
        CREATE TABLE IF NOT EXISTS attempts (
            task_id VARCHAR,
            attempt INTEGER,
            run_id VARCHAR,
            worker_id VARCHAR,
            term BIGINT,
            assigned_at DOUBLE,
            started_at DOUBLE,
            finished_at DOUBLE,
            outcome VARCHAR,
            category VARCHAR,
            message VARCHAR,
            PRIMARY KEY (task_id, attempt)
        )""",
    "test_cases": """
        CREATE TABLE IF NOT EXISTS test_cases (
            run_id VARCHAR,
            task_id VARCHAR,
            attempt INTEGER,
            nodeid VARCHAR,
            outcome VARCHAR,
            duration DOUBLE,
            message VARCHAR,
            worker_id VARCHAR,
            commit VARCHAR,
            branch VARCHAR,
            finished_at DOUBLE
        )""",
    "results": """
        CREATE TABLE IF NOT EXISTS results (
            run_id VARCHAR,
            task_id VARCHAR,
            attempt INTEGER,
            name VARCHAR,
            value DOUBLE,
            unit VARCHAR,
            direction VARCHAR,
            dims JSON,
            hardware VARCHAR,
            worker_id VARCHAR,
            commit VARCHAR,
            branch VARCHAR,
            "at" DOUBLE
        )""",
    "errors": """
        CREATE TABLE IF NOT EXISTS errors (
            "at" DOUBLE,
            run_id VARCHAR,
            task_id VARCHAR,
            attempt INTEGER,
            nodeid VARCHAR,
            worker_id VARCHAR,
            hostname VARCHAR,
            hardware VARCHAR,
            category VARCHAR,
            severity VARCHAR,
            message VARCHAR,
            fingerprint VARCHAR,
            context JSON
        )""",
    "workers": """
        CREATE TABLE IF NOT EXISTS workers (
            worker_id VARCHAR PRIMARY KEY,
            hostname VARCHAR,
            platform VARCHAR,
            cpus INTEGER,
            memory_gb DOUBLE,
            gpus INTEGER,
            gpu_names VARCHAR,
            labels VARCHAR,
            hardware VARCHAR,
            slots INTEGER,
            status VARCHAR,
            registered_at DOUBLE,
            changed_at DOUBLE,
            reason VARCHAR
        )""",
    "worker_status": """
        CREATE TABLE IF NOT EXISTS worker_status (
            worker_id VARCHAR,
            "at" DOUBLE,
            status VARCHAR,
            reason VARCHAR
        )""",
    "leadership": """
        CREATE TABLE IF NOT EXISTS leadership (
            term BIGINT PRIMARY KEY,
            coordinator_id VARCHAR,
            first_seen_at DOUBLE,
            last_seen_at DOUBLE,
            events BIGINT
        )""",
}

# Column meanings that are not obvious from the names:
# - projector_tasks: the exact folded state of unfinished tasks (the projector's own memory,
#   so that a restart folds exactly as an uninterrupted run would).
# - empty ids and messages are stored as NULL.
# - attempts.outcome: the TaskCompleted outcome, "error" for TaskFailed, "cancelled" for an
#   attempt cancelled while running, NULL while running or when superseded by a reassignment.
# - errors.context: JSON with "worker", "run" (the run's labels) and "task" keys.
# - leadership: counts every event with term > 0; coordinator_id is the actor of the term's
#   first event.
# - tasks.command: the argv of a command task joined by spaces ("" for pytest tasks).
# - test_cases: one row per test item per attempt, from TaskCompleted/TaskFailed cases; a
#   TaskFailed after which the task goes on (retrying, or its speculative twin runs) has none.
# - results: one row per Metric of a TaskCompleted (long form); dims are the metric's own
#   dims only (run labels stay in runs.labels, commit/branch have their own columns, so a
#   series is name x dims x hardware); `hardware` is the worker's hardware class.
# - errors: one row per TaskFailed and per "error"/"failed" test case; severity is
#   "critical" for infrastructure and internal, "warning" for timeout/environment, "info"
#   for test and cancelled.  A TaskFailed's cases get rows only when their message differs
#   from the task's, so one failure is not repeated once per test.
# - hardware (workers, results, errors): a class name such as "linux-8cpu-32gb" or
#   "linux-32cpu-256gb-1xH100", derived from the worker's capabilities (memory snapped to a
#   power of two within 10%, GPU names shortened).
