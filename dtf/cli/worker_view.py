"""`dtf show worker ID`'s summary: what the worker offers, its error history with
frequencies, and the machine's state at its latest failure that reported one."""

from __future__ import annotations

import time

from rich.console import Console
from rich.table import Table

from dtf.core.state import WorkerState
from events.catalogue import Capabilities, Gpu, SystemContext, TaskFailed
from projections.analytics.error_history import error_history

# The instruction-set extensions tests ask for; the rest of a CPU's flags are in its
# worker.registered event.
NOTABLE_FLAGS = (
    "avx",
    "amx",
    "sse4",
    "fma",
    "f16c",
    "bmi",
    "aes",
    "sha",
    "asimd",
    "neon",
    "sve",
    "sme",
)


def print_worker(console: Console, worker: WorkerState | None, failures: list[TaskFailed]) -> None:
    if worker is not None:
        _print_capabilities(console, worker)
    if not failures:
        console.print("errors: none reported by or for this worker")
        return
    kinds = error_history((f.at, f.category, f.message) for f in failures)
    table = Table(
        title=f"errors: {len(failures)} failure(s) of {len(kinds)} kind(s)", title_justify="left"
    )
    for col in ("count", "category", "first", "last", "message (latest)"):
        table.add_column(col, no_wrap=col != "message (latest)")
    for kind in kinds:
        table.add_row(
            str(kind.count), kind.category, _when(kind.first_at), _when(kind.last_at), kind.message
        )
    console.print(table)
    latest = next((f for f in reversed(failures) if f.context is not None), None)
    if latest is not None and latest.context is not None:
        console.print(f"system context of the latest ({latest.task_id}, {latest.category}):")
        for line in context_lines(latest.context):
            console.print(f"  {line}", markup=False, highlight=False)


def _print_capabilities(console: Console, worker: WorkerState) -> None:
    caps: Capabilities = worker.registered.capabilities
    status = worker.status + (f" ({worker.reason})" if worker.reason else "")
    console.print(
        f"worker {worker.worker_id}: {status}; {worker.slots} slot(s) on {caps.hostname} "
        f"({caps.platform}, python {caps.python or '?'})",
        markup=False,
        highlight=False,
    )
    cpu = caps.cpu_model or "cpu"
    cores = f"{caps.cpus} logical" + (
        f", {caps.physical_cores} physical" if caps.physical_cores else ""
    )
    cores += f" ({caps.performance_cores} performance)" if caps.performance_cores else ""
    clock = f", base {caps.cpu_base_mhz:g} MHz" if caps.cpu_base_mhz else ""
    clock += f", up to {caps.cpu_max_mhz:g} MHz" if caps.cpu_max_mhz else ""
    limit = f" (container limit {caps.cpu_limit:g} CPUs)" if caps.cpu_limit else ""
    lines = [f"cpu: {cpu}, {cores}{clock}{limit}"]
    if caps.cpu_flags:
        notable = [f for f in caps.cpu_flags if f.startswith(NOTABLE_FLAGS)]
        lines.append(f"isa: {' '.join(notable) or '-'} ({len(caps.cpu_flags)} flags in all)")
    memory = f"memory: {caps.memory_gb:g} GB"
    if caps.memory_limit_gb:
        memory += f" (container limit {caps.memory_limit_gb:g} GB)"
    lines.append(memory + (f"; disk free {caps.disk_free_gb:g} GB" if caps.disk_free_gb else ""))
    lines += [gpu_line(gpu) for gpu in caps.gpus]
    if caps.labels:
        lines.append(f"labels: {', '.join(caps.labels)}")
    for line in lines:
        console.print(f"  {line}", markup=False, highlight=False)


def gpu_line(gpu: Gpu) -> str:
    """One GPU as `dtf show worker` prints it, e.g. "gpu: amd AMD Instinct MI210 (64 GB,
    gfx90a, 104 cores, driver 6.14.0-24-generic)"."""
    unified = " unified" if gpu.unified_memory else ""
    extra = [f"{gpu.memory_gb:g} GB{unified}"] if gpu.memory_gb else []
    extra += [f"compute {gpu.compute_capability}"] if gpu.compute_capability else []
    extra += [gpu.arch] if gpu.arch else []
    extra += [f"{gpu.cores} cores"] if gpu.cores else []
    extra += [f"driver {gpu.driver}"] if gpu.driver else []
    extra += [f"CUDA {gpu.cuda}"] if gpu.cuda else []
    return f"gpu: {gpu.vendor} {gpu.name} ({', '.join(extra)})".replace(" ()", "")


def context_lines(ctx: SystemContext) -> list[str]:
    """A failure's system context as the lines an operator reads."""
    lines = []
    if ctx.cpu_percent >= 0:
        load = f", load {' '.join(f'{x:g}' for x in ctx.load)}" if ctx.load else ""
        lines.append(f"cpu {ctx.cpu_percent:g}%{load}")
    if ctx.memory_percent >= 0:
        lines.append(
            f"memory {ctx.memory_percent:g}% used, {ctx.memory_available_gb:g} GB available; "
            f"disk free {ctx.disk_free_gb:g} GB"
        )
    for i, (busy, used) in enumerate(zip(ctx.gpu_percent, ctx.gpu_memory_used_gb, strict=False)):
        lines.append(f"gpu {i}: {busy:g}% busy, {used:g} GB used")
    if ctx.processes:
        lines.append(f"processes (seen {ctx.processes_age_s:g}s before):")
        lines += [f"  {p.pid} {p.name} {p.rss_mb:g} MB {p.status}" for p in ctx.processes]
    lines += [f"oom: {line}" for line in ctx.oom]
    if ctx.output_tail:
        lines.append("last output:")
        lines += [f"  {line}" for line in ctx.output_tail.splitlines()[-15:]]
    return lines


def _when(at: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at))
