"""What this machine offers: CPUs (model, cores, clock, instruction-set flags), memory, free
disk, NVIDIA GPUs (NVML through nvidia-ml-py, else nvidia-smi) and a container's limits.

The parsing is `dtf.worker.probes`; here are the files and commands it reads. Only Linux has
the kernel files; elsewhere those fields stay empty and psutil's counts stand.
"""

from __future__ import annotations

import contextlib
import platform
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import psutil

from dtf.worker import probes
from events.catalogue import Capabilities, Gpu


def nvidia_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs: NVML when nvidia-ml-py and a driver are there, else nvidia-smi;
    none when neither answers."""
    try:
        import pynvml

        return probes.nvml_gpus(pynvml)
    except Exception:
        pass
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return ()
    for query, with_cap in ((probes.NVIDIA_SMI_QUERY, True), (probes.NVIDIA_SMI_OLD_QUERY, False)):
        try:
            out = subprocess.run(
                [exe, f"--query-gpu={query}", "--format=csv,noheader,nounits"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            continue  # an old driver refuses compute_cap: the query without it
        return probes.parse_nvidia_smi(out, with_compute_cap=with_cap)
    return ()


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def detect(
    labels: tuple[str, ...] = (), python: str = "", cache_dir: Path | None = None
) -> Capabilities:
    """This machine; `python` is the version of the interpreter that runs the tests,
    `cache_dir` where bundles go (its file system's free space is reported)."""
    cpu = probes.parse_cpuinfo(_read("/proc/cpuinfo") or "")
    limits = probes.cgroup_limits(_read) if sys.platform.startswith("linux") else probes.Limits()
    cpus = psutil.cpu_count(logical=True) or 1
    memory_gb = round(psutil.virtual_memory().total / 2**30, 1)
    limit_gb = round(limits.memory_bytes / 2**30, 1) if limits.memory_bytes else 0.0
    max_mhz = probes.parse_max_khz(
        _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq") or ""
    )
    disk = disk_free_gb(cache_dir)
    return Capabilities(
        platform=sys.platform,
        hostname=socket.gethostname(),
        # A container may use what its cgroup allows, not what the machine has.
        cpus=max(1, int(limits.cpus)) if 0 < limits.cpus < cpus else cpus,
        memory_gb=limit_gb if 0 < limit_gb < memory_gb else memory_gb,
        python=python or platform.python_version(),
        gpus=nvidia_gpus(),
        labels=labels,
        cpu_model=cpu.model or platform.processor(),
        physical_cores=cpu.physical or psutil.cpu_count(logical=False) or 0,
        cpu_max_mhz=max_mhz or cpu.mhz,
        cpu_flags=cpu.flags,
        disk_free_gb=disk,
        cpu_limit=limits.cpus if 0 < limits.cpus < cpus else 0.0,
        memory_limit_gb=limit_gb if 0 < limit_gb < memory_gb else 0.0,
    )


def disk_free_gb(directory: Path | None) -> float:
    """Free space where `directory` is (the home directory before it exists); 0 unknown."""
    with contextlib.suppress(OSError):
        where = directory if directory is not None and directory.exists() else Path.home()
        return round(shutil.disk_usage(where).free / 2**30, 1)
    return 0.0


def load() -> tuple[float, float]:
    """This machine's CPU and memory use now, in percent (CPU since the previous call; the
    first call reads 0).  Cheap enough for every heartbeat."""
    return psutil.cpu_percent(interval=None), psutil.virtual_memory().percent
