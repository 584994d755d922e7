"""The system context a worker attaches to a task that failed for a reason other than its
tests: load, memory, disk, GPUs, the task's process tree with RSS, OOM-killer evidence and the
task's last output.

The tree is sampled while the task runs (`TreeWatch`), since a crashed or killed task has no
tree left to read when its failure is reported; the OOM evidence compares the cgroup's
`oom_kill` count with the one at the task's start and reads the kernel log where it is
readable (`dmesg` needs privileges on most distributions; without them the count stands).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from dtf.worker import probes
from dtf.worker.hardware import disk_free_gb
from events.catalogue import Category, ProcessSample, SystemContext

# Failures that are the machine's or dtf's, not the tests': these carry a context.
WITH_CONTEXT: frozenset[Category] = frozenset(
    {"infrastructure", "timeout", "environment", "internal"}
)
SAMPLE_EVERY_S = 1.0
MAX_PROCESSES = 20
TAIL_CHARS = 4000


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def oom_kill_count() -> int | None:
    """This worker's cgroup's OOM kills so far; None where the kernel does not say."""
    text = probes.own_cgroup_file(_read, "memory.events", ("memory", "memory.oom_control"))
    return probes.oom_kills(text)


def tree_of(pid: int) -> tuple[ProcessSample, ...]:
    """`pid` and its descendants with their RSS, the root first; () when it is gone."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return ()
    samples = []
    for proc in procs[:MAX_PROCESSES]:
        with contextlib.suppress(psutil.Error), proc.oneshot():
            samples.append(
                ProcessSample(
                    proc.pid,
                    proc.name(),
                    round(proc.memory_info().rss / 2**20, 1),
                    proc.status(),
                )
            )
    return tuple(samples)


class TreeWatch:
    """The last sample of one attempt's process tree, and when it was taken."""

    def __init__(self) -> None:
        self.samples: tuple[ProcessSample, ...] = ()
        self.seen_at = 0.0
        self.oom_kills_at_start: int | None = None
        self.output_tail = ""  # set by the executor where the task's output is at hand

    def reset(self) -> None:
        """For a new attempt: nothing seen yet, the OOM count as it stands now."""
        self.samples, self.seen_at, self.output_tail = (), 0.0, ""
        self.oom_kills_at_start = oom_kill_count()

    async def follow(self, pid_of: Callable[[], int | None]) -> None:
        """Sample the tree of `pid_of()` every SAMPLE_EVERY_S until cancelled."""
        while True:
            pid = pid_of()
            if pid is not None:
                samples = await asyncio.to_thread(tree_of, pid)
                if samples:
                    self.samples, self.seen_at = samples, time.time()
            await asyncio.sleep(SAMPLE_EVERY_S)


def _kernel_log() -> str:
    exe = shutil.which("dmesg")
    if exe is None:
        return ""
    try:
        return subprocess.run(
            [exe], capture_output=True, text=True, timeout=2, errors="replace"
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def _gpus() -> tuple[tuple[float, ...], tuple[float, ...]]:
    """GPU use from NVML; () where it does not answer (no package, no driver, no GPU)."""
    try:
        import pynvml

        return probes.nvml_usage(pynvml)
    except Exception:
        return (), ()


def capture(watch: TreeWatch, disk_dir: Path, output_tail: str = "") -> SystemContext:
    """The machine now, with what `watch` saw of the attempt (blocking: run it in a thread)."""
    now = time.time()
    memory = psutil.virtual_memory()
    load: tuple[float, ...] = ()
    with contextlib.suppress(OSError, AttributeError):  # Windows has no load average
        load = tuple(round(x, 2) for x in os.getloadavg())
    # Only lines naming the attempt's processes: the log holds every OOM kill since boot.
    pids = {p.pid for p in watch.samples}
    oom = list(probes.oom_lines(_kernel_log(), pids)) if pids else []
    before, after = watch.oom_kills_at_start, oom_kill_count()
    if before is not None and after is not None and after > before:
        oom.append(f"cgroup oom_kill count rose from {before} to {after} during the task")
    busy, used = _gpus()
    tail = (output_tail or watch.output_tail)[-TAIL_CHARS:]
    return SystemContext(
        at=now,
        cpu_percent=psutil.cpu_percent(interval=None),
        memory_percent=memory.percent,
        memory_available_gb=round(memory.available / 2**30, 2),
        disk_free_gb=disk_free_gb(disk_dir),
        load=load,
        gpu_percent=busy,
        gpu_memory_used_gb=used,
        processes=watch.samples,
        processes_age_s=round(now - watch.seen_at, 1) if watch.samples else 0.0,
        oom=tuple(oom),
        output_tail=tail,
    )
