"""Reading what a machine offers out of what its tools and kernel files say.

Pure parsers, each of one source's documented format: Linux's `/proc/cpuinfo` (x86 `flags`,
ARM `Features`), cgroup v1 and v2 limit files (found through `/proc/self/cgroup`), cpufreq's
maximum and base frequency, `nvidia-smi --query-gpu ... --format=csv,noheader,nounits` and the
header of plain `nvidia-smi`, and NVIDIA's NVML through nvidia-ml-py (`pynvml`, passed in).
Other platforms and vendors: `probes_macos`, `probes_windows`, `probes_gpu`.
`dtf.worker.hardware` feeds them the real files and commands; tests feed them recorded ones
(`tests/fixtures/hardware/`, each with its source in SOURCES.md).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from events.catalogue import Gpu

# cgroup v1 writes "no limit" as the largest page-aligned int64; anything this big is none.
_NO_LIMIT_BYTES = 1 << 60
CGROUP_ROOT = "/sys/fs/cgroup"


@dataclass(frozen=True, slots=True)
class CpuInfo:
    model: str = ""
    logical: int = 0
    physical: int = 0  # cores, hyper-threads not counted; 0 when the file does not say
    flags: tuple[str, ...] = ()
    mhz: float = 0.0  # the current clock of the first CPU, as the file says
    base_mhz: float = 0.0  # the nominal clock, where the model name says it ("@ 2.60GHz")
    performance_cores: int = 0  # of `physical`, the fast ones where cores differ (Apple)


def parse_cpuinfo(text: str) -> CpuInfo:
    """`/proc/cpuinfo` of x86 (`model name`, `flags`, `physical id`/`core id`) or ARM
    (`Features`, and a model from `Hardware`/`Model` or the implementer and part)."""
    blocks = [b for b in re.split(r"\n\s*\n", text) if "processor" in b]
    fields = [dict(_pairs(b)) for b in blocks]
    if not fields:
        return CpuInfo()
    first = fields[0]
    flags = first.get("flags") or first.get("Features") or ""
    cores = {(f.get("physical id", ""), f.get("core id")) for f in fields if "core id" in f}
    model = first.get("model name") or _arm_model(text, first)
    try:
        mhz = float(first.get("cpu MHz", "0"))
    except ValueError:
        mhz = 0.0
    return CpuInfo(
        model=model.strip(),
        logical=len(fields),
        physical=len(cores),
        flags=tuple(sorted({f.lower() for f in flags.split()})),
        mhz=mhz,
        base_mhz=parse_base_mhz(model),
    )


def _pairs(block: str) -> list[tuple[str, str]]:
    found = []
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            found.append((key.strip(), value.strip()))
    return found


_ARM_IMPLEMENTERS = {"0x41": "ARM", "0x61": "Apple", "0x51": "Qualcomm", "0x48": "HiSilicon"}
# Arm Ltd's part numbers of the server cores a fleet meets (Arm's technical reference manuals).
_ARM_PARTS = {
    "0xd0c": "Neoverse-N1",
    "0xd40": "Neoverse-V1",
    "0xd49": "Neoverse-N2",
    "0xd4f": "Neoverse-V2",
}


def _arm_model(text: str, first: dict[str, str]) -> str:
    """ARM kernels name no model per CPU; a machine-wide `Hardware`/`Model` line may."""
    for key in ("Hardware", "Model"):
        found = re.search(rf"^{key}\s*:\s*(.+)$", text, re.MULTILINE)
        if found:
            return found[1]
    implementer = first.get("CPU implementer", "")
    if implementer:
        name = _ARM_IMPLEMENTERS.get(implementer.lower(), implementer)
        part = first.get("CPU part", "?").lower()
        if name == "ARM" and part in _ARM_PARTS:
            return f"ARM {_ARM_PARTS[part]}"
        return f"{name} part {part}"
    return ""


def parse_max_khz(text: str) -> float:
    """cpufreq's `cpuinfo_max_freq` or `base_frequency` (kHz) in MHz; 0 when unreadable."""
    try:
        return int(text.strip()) / 1000
    except ValueError:
        return 0.0


_AT_CLOCK = re.compile(r"@\s*(\d+(?:\.\d+)?)\s*([GM])Hz", re.IGNORECASE)


def parse_base_mhz(model: str) -> float:
    """The nominal clock Intel (and some AMD) model names end with, "CPU @ 2.60GHz", in MHz;
    0 when the name does not say (AMD's "EPYC 7R13 Processor", Apple's "M2 Pro")."""
    found = _AT_CLOCK.search(model)
    if not found:
        return 0.0
    value = float(found[1])
    return round(value * 1000 if found[2].upper() == "G" else value, 1)


@dataclass(frozen=True, slots=True)
class Limits:
    cpus: float = 0.0  # 0: no quota
    memory_bytes: int = 0  # 0: no limit


def cgroup_limits(read: Callable[[str], str | None]) -> Limits:
    """The tightest CPU quota and memory limit on this process's cgroup and its ancestors,
    v2 (`cpu.max`, `memory.max`) or v1 (`cpu.cfs_quota_us`/`cpu.cfs_period_us`,
    `memory.limit_in_bytes`). `read(path)` gives a file's text, None when it is absent."""
    membership = read("/proc/self/cgroup") or ""
    cpus: list[float] = []
    memory: list[int] = []
    for line in membership.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # v2's unified hierarchy
            for directory in _ancestors(CGROUP_ROOT, path):
                cpus += _v2_cpu(read(f"{directory}/cpu.max"))
                memory += _bytes(read(f"{directory}/memory.max"))
            continue
        names = controllers.split(",")
        if "cpu" in names:
            for directory in _ancestors(f"{CGROUP_ROOT}/{controllers}", path):
                quota = _number(read(f"{directory}/cpu.cfs_quota_us"))
                period = _number(read(f"{directory}/cpu.cfs_period_us"))
                if quota and quota > 0 and period and period > 0:
                    cpus.append(quota / period)
        if "memory" in names:
            for directory in _ancestors(f"{CGROUP_ROOT}/{controllers}", path):
                memory += _bytes(read(f"{directory}/memory.limit_in_bytes"))
    return Limits(min(cpus, default=0.0), min(memory, default=0))


def _ancestors(mount: str, path: str) -> list[str]:
    """The cgroup directory of `path` under `mount` and each one above it, up to the mount."""
    parts = PurePosixPath(path or "/").parts[1:]
    return [str(PurePosixPath(mount, *parts[:n])) for n in range(len(parts), -1, -1)]


def _v2_cpu(text: str | None) -> list[float]:
    """`cpu.max`: "QUOTA PERIOD" or "max PERIOD"."""
    if not text:
        return []
    quota, _, period = text.strip().partition(" ")
    try:
        return [int(quota) / int(period)] if quota != "max" else []
    except (ValueError, ZeroDivisionError):
        return []


def _bytes(text: str | None) -> list[int]:
    value = _number(text)
    return [int(value)] if value is not None and 0 < value < _NO_LIMIT_BYTES else []


def _number(text: str | None) -> float | None:
    try:
        return float(text.strip()) if text and text.strip() != "max" else None
    except ValueError:
        return None


# --- NVIDIA -------------------------------------------------------------------------------

# What `nvidia_gpus` asks nvidia-smi for; drivers before 510 lack compute_cap.
NVIDIA_SMI_QUERY = "name,memory.total,compute_cap,driver_version"
NVIDIA_SMI_OLD_QUERY = "name,memory.total,driver_version"


def parse_nvidia_smi(csv: str, *, with_compute_cap: bool = True) -> tuple[Gpu, ...]:
    """Lines of `--query-gpu=NVIDIA_SMI_QUERY --format=csv,noheader,nounits` (memory in MiB);
    a line that does not parse is skipped."""
    gpus = []
    for line in csv.splitlines():
        want = 4 if with_compute_cap else 3
        # A name may hold commas; the fields after it never do.
        cells = [c.strip() for c in line.rsplit(",", want - 1)]
        if len(cells) < want:
            continue
        name, rest = cells[0], cells[1:]
        try:
            memory = round(float(rest[0]) / 1024, 1)
        except ValueError:
            continue
        capability = rest[1] if with_compute_cap else ""
        gpus.append(
            Gpu("nvidia", name, memory, compute_capability=_known(capability), driver=rest[-1])
        )
    return tuple(gpus)


_CUDA_HEADER = re.compile(r"CUDA Version:\s*(\d+\.\d+)")


def parse_nvidia_smi_cuda(text: str) -> str:
    """The "CUDA Version: 12.2" of plain `nvidia-smi`'s header: the newest CUDA the driver
    runs; "" when absent (no driver, or a driver too old to print it)."""
    found = _CUDA_HEADER.search(text)
    return found[1] if found else ""


def cuda_version(encoded: int) -> str:
    """NVML's `nvmlSystemGetCudaDriverVersion` number as text: 12020 is "12.2"."""
    if encoded <= 0:
        return ""
    return f"{encoded // 1000}.{encoded % 1000 // 10}"


def nvml_gpus(pynvml: Any) -> tuple[Gpu, ...]:
    """The GPUs NVML lists, through an imported `pynvml` (nvidia-ml-py); raises its NVMLError
    when there is no driver, which the caller takes as "ask nvidia-smi"."""
    pynvml.nvmlInit()
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = cuda_version(int(pynvml.nvmlSystemGetCudaDriverVersion()))
        except Exception:  # an old nvidia-ml-py or driver lacks it: the rest still stands
            cuda = ""
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle).total
            gpus.append(
                Gpu(
                    "nvidia",
                    _text(pynvml.nvmlDeviceGetName(handle)),
                    round(memory / 2**30, 1),
                    compute_capability=f"{major}.{minor}",
                    driver=driver,
                    cuda=cuda,
                )
            )
        return tuple(gpus)
    finally:
        pynvml.nvmlShutdown()


def nvml_usage(pynvml: Any) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-GPU utilisation (%) and memory used (GiB) now, through an imported `pynvml`;
    raises its NVMLError where there is no driver."""
    pynvml.nvmlInit()
    try:
        count = pynvml.nvmlDeviceGetCount()
        handles = [pynvml.nvmlDeviceGetHandleByIndex(i) for i in range(count)]
        busy = tuple(float(pynvml.nvmlDeviceGetUtilizationRates(h).gpu) for h in handles)
        used = tuple(round(pynvml.nvmlDeviceGetMemoryInfo(h).used / 2**30, 1) for h in handles)
        return busy, used
    finally:
        pynvml.nvmlShutdown()


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _known(value: str) -> str:
    """nvidia-smi's "[N/A]" and "[Not Supported]" are no value."""
    return "" if value.startswith("[") else value


# --- OOM-killer evidence -------------------------------------------------------------------

# The kernel's words for an OOM kill (mm/oom_kill.c): the summary line and the oom-kill line.
_OOM = re.compile(
    r"(?:Out of memory|Memory cgroup out of memory): Killed process (?P<pid>\d+)"
    r"|oom-kill:.*?\bpid=(?P<pid2>\d+)"
)


def oom_lines(kernel_log: str, pids: set[int] | None = None, keep: int = 5) -> tuple[str, ...]:
    """The kernel log's OOM-kill lines (`dmesg` output), of `pids` when given; the last `keep`."""
    found = []
    for line in kernel_log.splitlines():
        hit = _OOM.search(line)
        if hit and (pids is None or int(hit["pid"] or hit["pid2"]) in pids):
            found.append(line.strip())
    return tuple(found[-keep:])


def oom_kills(events: str | None) -> int | None:
    """The `oom_kill N` count of cgroup v2's memory.events (v1's memory.oom_control writes the
    same line); None when the file is absent or does not say."""
    for line in (events or "").splitlines():
        key, _, value = line.partition(" ")
        if key == "oom_kill" and value.strip().isdigit():
            return int(value)
    return None


def own_cgroup_file(read: Callable[[str], str | None], v2_name: str, v1: tuple[str, str]) -> str:
    """The text of this process's own cgroup file `v2_name` (v2), or of `v1` = (controller,
    name) on a v1 hierarchy; the nearest ancestor's where the cgroup's own is not visible
    (a container sees its cgroup as the mount's root). "" when there is none."""
    for line in (read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            candidates = [f"{d}/{v2_name}" for d in _ancestors(CGROUP_ROOT, path)]
        elif v1[0] in controllers.split(","):
            mount = f"{CGROUP_ROOT}/{controllers}"
            candidates = [f"{d}/{v1[1]}" for d in _ancestors(mount, path)]
        else:
            continue
        for candidate in candidates:
            if (text := read(candidate)) is not None:
                return text
    return ""
