"""Every event dtf records, as frozen, tagged msgspec Structs.

Each event names its aggregate (run, task or worker) by id; `subject()` in `events.subjects`
derives the NATS subject from it.  Fields added later always get a default so old logs keep
decoding (see msgspec's schema-evolution guide).  Every struct here, like the fold's states
(`dtf.core.state`), is `gc=False`: an event holds only values and can be in no reference
cycle, and a replay makes millions of them, which the cyclic collector would otherwise track
and walk again and again.
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

SCHEMA_VERSION = 1

Outcome = Literal["passed", "failed", "skipped", "xfailed", "xpassed", "error"]
# Error categories; issue #3 retries by these.
Category = Literal["infrastructure", "timeout", "environment", "test", "cancelled", "internal"]
# "health": a check the coordinator runs on a quarantined worker; passing re-enables it.
TaskKind = Literal["pytest", "command", "health"]


class Requirements(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a task needs from a worker; zero or empty means 'anything'."""

    platform: str = ""
    cpus: int = 0
    memory_gb: float = 0.0
    gpus: int = 0
    gpu_vendor: str = ""
    gpu_memory_gb: float = 0.0
    labels: tuple[str, ...] = ()
    cpu_flags: tuple[str, ...] = ()  # instruction-set extensions, e.g. avx512f, amx_tile, asimd
    compute_capability: float = 0.0  # of the GPUs asked for (NVIDIA), at least this
    gpu_arch: str = ""  # of the GPUs asked for: AMD's gfx target ("gfx90a"), Gpu.arch


class Gpu(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One GPU: `vendor` is "nvidia", "amd", "intel" or "apple"."""

    vendor: str
    name: str = ""
    memory_gb: float = 0.0  # its own memory; with `unified_memory`, the machine's RAM it shares
    compute_capability: str = ""  # NVIDIA's "8.0", "9.0"
    driver: str = ""
    # What kernels are compiled for: AMD's gfx target ("gfx90a"), Intel's graphics IP
    # version ("12.55.8"), Apple's Metal family ("metal3").
    arch: str = ""
    cuda: str = ""  # NVIDIA: the newest CUDA version the driver runs ("12.2")
    cores: int = 0  # as the vendor counts them: Apple's GPU cores, AMD's compute units
    unified_memory: bool = False  # Apple silicon: CPU and GPU share one memory


class Capabilities(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """What a worker offers, detected once at start."""

    platform: str
    hostname: str
    cpus: int
    memory_gb: float
    python: str = ""
    gpus: tuple[Gpu, ...] = ()
    labels: tuple[str, ...] = ()
    cpu_model: str = ""
    physical_cores: int = 0
    cpu_max_mhz: float = 0.0
    cpu_flags: tuple[str, ...] = ()
    disk_free_gb: float = 0.0  # in the bundle cache's file system
    # A container's (cgroup's) limits, where they are below the machine's: `cpus` and
    # `memory_gb` are then these, what the worker may really use.
    cpu_limit: float = 0.0
    memory_limit_gb: float = 0.0
    cpu_base_mhz: float = 0.0  # the nominal clock (Intel's base frequency, "@ 2.60GHz")
    performance_cores: int = 0  # of `physical_cores`, the fast ones (Apple's P-cores); 0: alike


class CaseResult(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One test item's result: its pytest node id, outcome, seconds, and failure text."""

    nodeid: str
    outcome: Outcome
    duration: float = 0.0
    message: str = ""
    longrepr: str = ""
    reruns: int = 0  # failed runs before this outcome; a pass after reruns is flaky
    # pytest's own count of the item's reports by category, subtests included (`{"passed": 1,
    # "failed": 1, "subtests passed": 3}`); empty when it is just {outcome: 1}.
    tally: dict[str, int] = {}


class Metric(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One benchmark measurement a command reported, with how to read it."""

    name: str
    value: float
    unit: str = ""
    direction: Literal["lower", "higher"] = "lower"  # which way is better
    dims: dict[str, str] = {}  # e.g. {"model": "bert", "batch_size": "8"}


class Event(msgspec.Struct, frozen=True, gc=False, tag_field="type", kw_only=True):
    """Common envelope: unique id (sent as Nats-Msg-Id), when, who, and schema version."""

    id: str
    at: float
    actor: str
    v: int = SCHEMA_VERSION


class OfRun(Event, frozen=True):
    """An event of a run aggregate."""

    aggregate: ClassVar[str] = "run"
    run_id: str

    @property
    def key(self) -> str:
        """The aggregate, as folds key it: 'run:<run id>'."""
        return f"run:{self.run_id}"


class OfTask(Event, frozen=True):
    """An event of a task aggregate."""

    aggregate: ClassVar[str] = "task"
    task_id: str

    @property
    def key(self) -> str:
        """The aggregate, as folds key it: 'task:<task id>'."""
        return f"task:{self.task_id}"


class OfWorker(Event, frozen=True):
    """An event of a worker aggregate."""

    aggregate: ClassVar[str] = "worker"
    worker_id: str

    @property
    def key(self) -> str:
        """The aggregate, as folds key it: 'worker:<worker id>'."""
        return f"worker:{self.worker_id}"


# --- run aggregate --------------------------------------------------------------------


class RunSubmitted(OfRun, frozen=True, tag="run.submitted"):
    bundle: str = ""  # sha256 of the code archive in the object store
    root: str = ""  # where the project lives on the submitting machine (for display)
    args: tuple[str, ...] = ()  # pytest arguments (paths, -k ...) the runner collects with
    task_ids: tuple[str, ...] = ()
    total_cases: int = 0
    # Results known without running anything: module-level skips found at collection.
    precollected: tuple[CaseResult, ...] = ()
    # Free-form tags of the run; dtf fills "commit" and "branch" from git when it can.
    labels: dict[str, str] = {}


class RunCancelRequested(OfRun, frozen=True, tag="run.cancel_requested"):
    reason: str = ""


class RunFinished(OfRun, frozen=True, tag="run.finished"):
    counts: dict[str, int] = {}
    cancelled: bool = False
    term: int = 0


# --- task aggregate -------------------------------------------------------------------


class TaskQueued(OfTask, frozen=True, tag="task.queued"):
    run_id: str
    kind: TaskKind
    nodeids: tuple[str, ...] = ()  # kind == "pytest"
    argv: tuple[str, ...] = ()  # kind == "command"
    requirements: Requirements = Requirements()
    priority: int = 0
    timeout: float = 600.0
    expected_duration: float = 0.0
    bundle: str = ""
    args: tuple[str, ...] = ()
    max_attempts: int = 3  # attempts for infrastructure errors and timeouts
    reruns: int = 0  # reruns of a failing test inside one attempt (flaky detection)
    pinned: str = ""  # only this worker may run it (health checks)
    # Measure coverage (`dtf run --cov`): the sources to measure, ("",) for coverage.py's
    # default (everything but the standard library and installed packages); () for off.
    coverage: tuple[str, ...] = ()


class TaskAssigned(OfTask, frozen=True, tag="task.assigned"):
    worker_id: str
    attempt: int = 1
    term: int = 0


class TaskSpeculated(OfTask, frozen=True, tag="task.speculated"):
    """A second, speculative attempt of a straggling task on another worker.

    Both attempts run; the first result wins (the other's write is refused) and the
    coordinator then cancels the loser.  Published on the worker's assignment subject.
    """

    worker_id: str
    attempt: int = 2
    term: int = 0


class TaskStarted(OfTask, frozen=True, tag="task.started"):
    worker_id: str
    attempt: int = 1


class TaskCompleted(OfTask, frozen=True, tag="task.completed"):
    worker_id: str
    attempt: int = 1
    outcome: Outcome = "passed"
    duration: float = 0.0
    cases: tuple[CaseResult, ...] = ()
    metrics: dict[str, float] = {}  # name -> value, the short form of `results`
    exit_code: int = 0
    results: tuple[Metric, ...] = ()
    coverage_key: str = ""  # the session's coverage data so far (dtf_coverage object store)


class ProcessSample(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One process of a task's tree, as last seen."""

    pid: int
    name: str = ""
    rss_mb: float = 0.0
    status: str = ""  # psutil's: running, sleeping, zombie, ...


class SystemContext(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """The worker's machine when a task failed for a reason other than its tests: what an
    operator needs to tell a full disk from an OOM kill from an overloaded box."""

    at: float
    cpu_percent: float = -1.0
    memory_percent: float = -1.0
    memory_available_gb: float = 0.0
    disk_free_gb: float = 0.0  # in the bundle cache's file system
    load: tuple[float, ...] = ()  # 1, 5 and 15 minute load averages
    gpu_percent: tuple[float, ...] = ()  # per GPU, where NVML answers
    gpu_memory_used_gb: tuple[float, ...] = ()
    processes: tuple[ProcessSample, ...] = ()  # the task's tree, its root first
    processes_age_s: float = 0.0  # how long before the failure the tree was last seen
    oom: tuple[str, ...] = ()  # OOM-killer evidence: kernel log lines, cgroup oom_kill counts
    output_tail: str = ""  # the task's last lines of output


class TaskFailed(OfTask, frozen=True, tag="task.failed"):
    """The task could not produce results (crash, timeout, lost worker, bad environment).

    `cases` carries error results for the tests it held, so that every test is reported.
    """

    worker_id: str = ""
    attempt: int = 1
    category: Category = "internal"
    message: str = ""
    cases: tuple[CaseResult, ...] = ()
    term: int = 0
    coverage_key: str = ""  # as TaskCompleted's: what ran before the failure was measured
    context: SystemContext | None = None  # for failures not of the tests (infrastructure...)


class TaskRetryScheduled(OfTask, frozen=True, tag="task.retry_scheduled"):
    """A failed attempt will be retried: queued again, not before `not_before`.

    `avoid` lists workers to pass over when another capable one is free; `min_memory_gb`
    escalates to a larger worker after a resource exhaustion.
    """

    attempt: int  # the attempt that failed
    not_before: float = 0.0
    avoid: tuple[str, ...] = ()
    min_memory_gb: float = 0.0
    reason: str = ""
    term: int = 0


class TaskCheckpointed(OfTask, frozen=True, tag="task.checkpointed"):
    """The running attempt's checkpoint directory was saved (object store, dtf_checkpoints)."""

    worker_id: str
    attempt: int = 1
    size: int = 0


class TaskResultSuperseded(OfTask, frozen=True, tag="task.superseded"):
    """A worker finished an attempt that had already been given up on; kept for the audit."""

    worker_id: str
    attempt: int = 1
    outcome: str = ""
    message: str = ""


class TaskCancelled(OfTask, frozen=True, tag="task.cancelled"):
    reason: str = ""
    term: int = 0
    attempt: int = 0  # 0: the task; otherwise only this attempt (a speculative loser)


# --- worker aggregate -----------------------------------------------------------------


class WorkerRegistered(OfWorker, frozen=True, tag="worker.registered"):
    capabilities: Capabilities
    slots: int = 1


class WorkerDraining(OfWorker, frozen=True, tag="worker.draining"):
    """The worker takes no new work; it finishes what it has, then stops."""


class WorkerStopped(OfWorker, frozen=True, tag="worker.stopped"):
    reason: str = ""


class WorkerLost(OfWorker, frozen=True, tag="worker.lost"):
    reason: str = ""
    term: int = 0


class WorkerQuarantined(OfWorker, frozen=True, tag="worker.quarantined"):
    """No new work for this worker until an operator enables it (dtf worker enable ID)."""

    reason: str = ""
    term: int = 0


class WorkerEnabled(OfWorker, frozen=True, tag="worker.enabled"):
    """Back in service after a quarantine or a disable (an operator, or a health check)."""


class WorkerDisabled(OfWorker, frozen=True, tag="worker.disabled"):
    reason: str = ""


class WorkerDrainRequested(OfWorker, frozen=True, tag="worker.drain_requested"):
    """An operator asks the worker to drain (`dtf worker drain ID`)."""


RunEvent = RunSubmitted | RunCancelRequested | RunFinished
TaskEvent = (
    TaskQueued
    | TaskAssigned
    | TaskSpeculated
    | TaskStarted
    | TaskCompleted
    | TaskFailed
    | TaskRetryScheduled
    | TaskCheckpointed
    | TaskResultSuperseded
    | TaskCancelled
)
WorkerEvent = (
    WorkerRegistered
    | WorkerDraining
    | WorkerStopped
    | WorkerLost
    | WorkerQuarantined
    | WorkerEnabled
    | WorkerDisabled
    | WorkerDrainRequested
)
AnyEvent = RunEvent | TaskEvent | WorkerEvent

TERMINAL_TASK_EVENTS = (TaskCompleted, TaskFailed, TaskCancelled)


class CaseProgress(msgspec.Struct, frozen=True, gc=False, omit_defaults=True):
    """One test's result the moment a worker has it, on `dtf.progress.<task id>`.

    Not an event: a core NATS message nobody stores, so that a live display moves test by
    test; the task's TaskCompleted or TaskFailed remains what counts.
    """

    task_id: str
    attempt: int
    nodeid: str
    outcome: Outcome
