"""The hardware parsers against recorded outputs (tests/fixtures/hardware/SOURCES.md), and the
live detection on the machine the tests run on."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import psutil
import pytest

from dtf.worker import hardware, probes
from events.catalogue import Gpu

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hardware"


def test_x86_cpuinfo_gives_model_cores_clock_and_flags() -> None:
    cpu = probes.parse_cpuinfo((FIXTURES / "cpuinfo-x86-xeon-2vcpu.txt").read_text())
    assert cpu.model == "Intel(R) Xeon(R) Processor"
    assert (cpu.logical, cpu.physical) == (2, 2)
    assert cpu.mhz == pytest.approx(2599.998)
    assert {"avx2", "avx512f", "amx_tile", "amx_int8"} <= set(cpu.flags)
    assert list(cpu.flags) == sorted(set(cpu.flags))


def test_arm_cpuinfo_names_the_core_from_its_part_number() -> None:
    cpu = probes.parse_cpuinfo((FIXTURES / "cpuinfo-arm64-neoverse-n1.txt").read_text())
    assert cpu.model == "ARM Neoverse-N1"
    assert cpu.logical == 2
    assert cpu.physical == 0  # ARM's file has no core ids: psutil's count stands
    assert {"asimd", "atomics", "asimddp"} <= set(cpu.flags)


def test_hyperthreads_count_once_as_physical_cores() -> None:
    block = (
        "processor\t: {n}\nmodel name\t: X\nphysical id\t: 0\ncore id\t\t: {core}\nflags\t: sse\n"
    )
    text = "\n".join(block.format(n=n, core=n % 2) for n in range(4))
    assert (probes.parse_cpuinfo(text).logical, probes.parse_cpuinfo(text).physical) == (4, 2)


@pytest.mark.parametrize("garbage", ["", "nonsense", "processor\n\n\n", "\x00\xff"])
def test_unreadable_cpuinfo_gives_nothing(garbage: str) -> None:
    cpu = probes.parse_cpuinfo(garbage)
    assert (cpu.model, cpu.flags) == ("", ())


def test_cpufreq_maximum_is_read_in_mhz() -> None:
    assert probes.parse_max_khz("3500000\n") == 3500.0
    assert probes.parse_max_khz("") == 0.0


def _files(files: dict[str, str]) -> Callable[[str], str | None]:
    return files.get


def test_cgroup_v2_quota_and_memory_limit_of_a_container() -> None:
    # Docker with a cgroup namespace: the container's cgroup is the mount's root.
    limits = probes.cgroup_limits(
        _files(
            {
                "/proc/self/cgroup": "0::/\n",
                "/sys/fs/cgroup/cpu.max": "150000 100000\n",
                "/sys/fs/cgroup/memory.max": "2147483648\n",
            }
        )
    )
    assert limits == probes.Limits(cpus=1.5, memory_bytes=2**31)


def test_cgroup_v2_takes_the_tightest_limit_up_the_tree() -> None:
    limits = probes.cgroup_limits(
        _files(
            {
                "/proc/self/cgroup": "0::/system.slice/dtf-worker.service\n",
                "/sys/fs/cgroup/system.slice/dtf-worker.service/cpu.max": "max 100000\n",
                "/sys/fs/cgroup/system.slice/dtf-worker.service/memory.max": "max\n",
                "/sys/fs/cgroup/system.slice/cpu.max": "400000 100000\n",
                "/sys/fs/cgroup/system.slice/memory.max": "8589934592\n",
                "/sys/fs/cgroup/memory.max": "17179869184\n",
            }
        )
    )
    assert limits == probes.Limits(cpus=4.0, memory_bytes=8 * 2**30)


def test_cgroup_v1_quota_and_memory_limit() -> None:
    # Docker on a v1 host: /proc/self/cgroup names the host's path, the mount is the container.
    limits = probes.cgroup_limits(
        _files(
            {
                "/proc/self/cgroup": "4:memory:/docker/0123abcd\n2:cpu,cpuacct:/docker/0123abcd\n",
                "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us": "200000\n",
                "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us": "100000\n",
                "/sys/fs/cgroup/memory/memory.limit_in_bytes": "1073741824\n",
            }
        )
    )
    assert limits == probes.Limits(cpus=2.0, memory_bytes=2**30)


def test_cgroup_without_limits_reports_none() -> None:
    # This VM's own v1 files: quota -1 and the page-aligned int64 "unlimited".
    UNLIMITED = "9223372036854771712\n"
    limits = probes.cgroup_limits(
        _files(
            {
                "/proc/self/cgroup": "4:memory:/process_api/a05\n1:cpu:/\n0::/\n",
                "/sys/fs/cgroup/cpu/cpu.cfs_quota_us": "-1\n",
                "/sys/fs/cgroup/cpu/cpu.cfs_period_us": "100000\n",
                "/sys/fs/cgroup/memory/process_api/a05/memory.limit_in_bytes": UNLIMITED,
                "/sys/fs/cgroup/memory/memory.limit_in_bytes": UNLIMITED,
            }
        )
    )
    assert limits == probes.Limits()
    assert probes.cgroup_limits(_files({})) == probes.Limits()
    assert probes.cgroup_limits(_files({"/proc/self/cgroup": "garbage\n::\n"})) == probes.Limits()


def test_nvidia_smi_csv_with_compute_capability() -> None:
    # --query-gpu=name,memory.total,compute_cap,driver_version --format=csv,noheader,nounits
    out = "NVIDIA H100 80GB HBM3, 81559, 9.0, 550.54.15\nNVIDIA A10G, 23028, 8.6, 550.54.15\n"
    assert probes.parse_nvidia_smi(out) == (
        Gpu("nvidia", "NVIDIA H100 80GB HBM3", 79.6, compute_capability="9.0", driver="550.54.15"),
        Gpu("nvidia", "NVIDIA A10G", 22.5, compute_capability="8.6", driver="550.54.15"),
    )


def test_nvidia_smi_not_available_values_and_old_drivers() -> None:
    out = "Tesla K80, 11441, [N/A], 470.82.01\n"
    assert probes.parse_nvidia_smi(out)[0].compute_capability == ""
    old = probes.parse_nvidia_smi("Tesla T4, 15109, 460.32.03\n", with_compute_cap=False)
    assert old == (Gpu("nvidia", "Tesla T4", 14.8, driver="460.32.03"),)
    # A name holding a comma keeps it; a line that does not parse is skipped.
    odd = probes.parse_nvidia_smi("GPU, rev 2, 1024, 7.5, 1\nNo devices were found\nx, y, z, w\n")
    assert [g.name for g in odd] == ["GPU, rev 2"]


class _NvmlError(Exception):
    pass


def _fake_pynvml(
    devices: list[tuple[str, int, tuple[int, int]]], *, driver: bool = True
) -> tuple[list[str], SimpleNamespace]:
    """pynvml's surface `nvml_gpus` uses, as nvidia-ml-py defines it (bytes or str names)."""
    calls: list[str] = []

    def init() -> None:
        calls.append("init")
        if not driver:
            raise _NvmlError("Driver Not Loaded")

    return calls, SimpleNamespace(
        nvmlInit=init,
        nvmlShutdown=lambda: calls.append("shutdown"),
        nvmlSystemGetDriverVersion=lambda: b"550.54.15",
        nvmlDeviceGetCount=lambda: len(devices),
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda i: devices[i][0],
        nvmlDeviceGetMemoryInfo=lambda i: SimpleNamespace(total=devices[i][1]),
        nvmlDeviceGetCudaComputeCapability=lambda i: devices[i][2],
    )


def test_nvml_lists_gpus_and_shuts_down() -> None:
    calls, nvml = _fake_pynvml(
        [("NVIDIA H100 80GB HBM3", 85520809984, (9, 0)), ("A2", 16 * 2**30, (8, 6))]
    )
    assert probes.nvml_gpus(nvml) == (
        Gpu("nvidia", "NVIDIA H100 80GB HBM3", 79.6, compute_capability="9.0", driver="550.54.15"),
        Gpu("nvidia", "A2", 16.0, compute_capability="8.6", driver="550.54.15"),
    )
    assert calls == ["init", "shutdown"]
    calls, nvml = _fake_pynvml([], driver=False)
    with pytest.raises(_NvmlError):
        probes.nvml_gpus(nvml)


def test_live_detection_on_this_machine(tmp_path: Path) -> None:
    caps = hardware.detect(labels=("here",), cache_dir=tmp_path)
    assert caps.platform == sys.platform
    assert caps.labels == ("here",)
    assert 1 <= caps.cpus <= (psutil.cpu_count() or 1)
    assert 0 < caps.memory_gb <= psutil.virtual_memory().total / 2**30 + 0.1
    assert caps.disk_free_gb == pytest.approx(shutil.disk_usage(tmp_path).free / 2**30, abs=1.0)
    if sys.platform.startswith("linux"):
        cpu = probes.parse_cpuinfo(Path("/proc/cpuinfo").read_text())
        assert caps.cpu_flags == cpu.flags and caps.cpu_flags
        assert caps.cpu_model == cpu.model
    if shutil.which("nvidia-smi") is None and not os.path.exists("/dev/nvidiactl"):
        assert not [g for g in caps.gpus if g.vendor == "nvidia"]
