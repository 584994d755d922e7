"""What this machine offers: CPUs (model, cores, clocks, instruction-set flags), memory, free
disk, GPUs of NVIDIA, AMD, Intel and Apple, and a container's limits.

The parsing is `dtf.worker.probes` (Linux, NVIDIA), `probes_gpu` (AMD, Intel, Apple GPUs),
`probes_macos` and `probes_windows`; here are the files and commands they read. The CPU comes
from /proc/cpuinfo on Linux, `sysctl` on macOS and PowerShell's CIM on Windows; psutil's counts
stand where those say nothing. GPUs: NVIDIA (NVML, else nvidia-smi), then AMD (amd-smi, else
rocm-smi), Intel (xpu-smi, else sycl-ls), Apple (system_profiler), and on Windows the display
adapters no vendor tool reported. Every tool runs only when it is on PATH, with a timeout; one
that fails, hangs or prints what cannot be read gives no GPUs, so a worker always starts.
"""

from __future__ import annotations

import contextlib
import dataclasses
import platform
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import msgspec
import psutil

from dtf.worker import probes, probes_gpu, probes_macos, probes_windows
from events.catalogue import Capabilities, Gpu

TOOL_TIMEOUT_S = 10.0


def run_tool(name: str, *args: str, timeout: float | None = None) -> str | None:
    """The standard output of `name args` when `name` is on PATH and exits 0 within `timeout`
    seconds (TOOL_TIMEOUT_S by default); None otherwise."""
    exe = shutil.which(name)
    if exe is None:
        return None
    try:
        return subprocess.run(
            [exe, *args],
            capture_output=True,
            text=True,
            timeout=TOOL_TIMEOUT_S if timeout is None else timeout,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError, UnicodeDecodeError):
        return None


def nvidia_gpus() -> tuple[Gpu, ...]:
    """The NVIDIA GPUs: NVML when nvidia-ml-py and a driver are there, else nvidia-smi;
    none when neither answers."""
    try:
        import pynvml

        return probes.nvml_gpus(pynvml)
    except Exception:
        pass
    for query, with_cap in ((probes.NVIDIA_SMI_QUERY, True), (probes.NVIDIA_SMI_OLD_QUERY, False)):
        # An old driver refuses compute_cap: then the query without it.
        out = run_tool("nvidia-smi", f"--query-gpu={query}", "--format=csv,noheader,nounits")
        if out is not None:
            gpus = probes.parse_nvidia_smi(out, with_compute_cap=with_cap)
            # The CUDA version is in the plain table's header only.
            cuda = probes.parse_nvidia_smi_cuda(run_tool("nvidia-smi") or "") if gpus else ""
            return tuple(msgspec.structs.replace(g, cuda=cuda) for g in gpus)
    return ()


def amd_gpus() -> tuple[Gpu, ...]:
    """AMD GPUs: amd-smi (ROCm 6+), else rocm-smi."""
    out = run_tool("amd-smi", "static", "--json")
    gpus = probes_gpu.parse_amd_smi_static(out) if out is not None else ()
    if gpus:
        return gpus
    out = run_tool(
        "rocm-smi", "--showproductname", "--showmeminfo", "vram", "--showdriverversion", "--json"
    )
    return probes_gpu.parse_rocm_smi(out) if out is not None else ()


def intel_gpus() -> tuple[Gpu, ...]:
    """Intel GPUs: xpu-smi (each device asked for its memory and driver), else sycl-ls."""
    listing = run_tool("xpu-smi", "discovery", "-j")
    gpus = []
    for device_id, listed in probes_gpu.xpu_smi_devices(listing or ""):
        detail = (
            run_tool("xpu-smi", "discovery", "-d", str(device_id), "-j") if device_id >= 0 else None
        )
        details = probes_gpu.parse_xpu_smi_discovery(detail or "")
        gpus.append(details[0] if details else listed)
    if gpus:
        return tuple(gpus)
    out = run_tool("sycl-ls")
    return probes_gpu.parse_sycl_ls(out) if out is not None else ()


def apple_gpus(memory_gb: float) -> tuple[Gpu, ...]:
    """The Mac's GPUs (system_profiler); Apple silicon's share `memory_gb`."""
    out = run_tool("system_profiler", "SPDisplaysDataType", "-json", timeout=30.0)
    return probes_gpu.parse_system_profiler_displays(out, memory_gb) if out is not None else ()


def windows_gpus() -> tuple[Gpu, ...]:
    """Windows' display adapters (Win32_VideoController) of AMD, Intel and NVIDIA."""
    out = _powershell(probes_windows.VIDEO_QUERY)
    return probes_windows.parse_win32_video_controllers(out) if out is not None else ()


def detect_gpus(memory_gb: float, os_name: str = sys.platform) -> tuple[Gpu, ...]:
    """Every vendor's GPUs, each vendor's probe in turn; a probe that raises counts as none."""
    probes_in_order: list[Callable[[], tuple[Gpu, ...]]] = [nvidia_gpus, amd_gpus, intel_gpus]
    if os_name == "darwin":
        probes_in_order.append(lambda: apple_gpus(memory_gb))
    found: list[Gpu] = []
    for probe in probes_in_order:
        found += _safely(probe)
    if os_name == "win32":
        # Only for vendors whose own tool said nothing: the tools know memory and versions.
        seen = {g.vendor for g in found}
        found += [g for g in _safely(windows_gpus) if g.vendor not in seen]
    return tuple(found)


def _safely(probe: Callable[[], tuple[Gpu, ...]]) -> tuple[Gpu, ...]:
    try:
        return probe()
    except Exception:  # a probe's bug must not keep the worker from starting
        return ()


def _powershell(command: str) -> str | None:
    for shell in ("pwsh", "powershell"):
        out = run_tool(shell, "-NoProfile", "-NonInteractive", "-Command", command, timeout=30.0)
        if out is not None:
            return out
    return None


def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except (OSError, UnicodeDecodeError):
        return None


def cpu_info(os_name: str = sys.platform) -> probes.CpuInfo:
    """This machine's CPU as its system describes it; empty where it does not."""
    try:
        if os_name == "darwin":
            out = run_tool("sysctl", "hw", "machdep.cpu")
            return probes_macos.parse_sysctl(out or "")[0]
        if os_name == "win32":
            return probes_windows.parse_win32_processor(
                _powershell(probes_windows.PROCESSOR_QUERY) or ""
            )
        cpu = probes.parse_cpuinfo(_read("/proc/cpuinfo") or "")
        base = probes.parse_max_khz(
            _read("/sys/devices/system/cpu/cpu0/cpufreq/base_frequency") or ""
        )
        return dataclasses.replace(cpu, base_mhz=base) if base else cpu
    except Exception:
        return probes.CpuInfo()


def detect(
    labels: tuple[str, ...] = (), python: str = "", cache_dir: Path | None = None
) -> Capabilities:
    """This machine; `python` is the version of the interpreter that runs the tests,
    `cache_dir` where bundles go (its file system's free space is reported)."""
    cpu = cpu_info()
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
        gpus=detect_gpus(memory_gb),
        labels=labels,
        cpu_model=cpu.model or platform.processor(),
        physical_cores=cpu.physical or psutil.cpu_count(logical=False) or 0,
        cpu_max_mhz=max_mhz or cpu.mhz,
        cpu_flags=cpu.flags,
        disk_free_gb=disk,
        cpu_limit=limits.cpus if 0 < limits.cpus < cpus else 0.0,
        memory_limit_gb=limit_gb if 0 < limit_gb < memory_gb else 0.0,
        cpu_base_mhz=cpu.base_mhz,
        performance_cores=cpu.performance_cores,
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
