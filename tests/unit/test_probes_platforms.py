"""The AMD, Intel, Apple, macOS and Windows parsers against recorded outputs of the real tools
(tests/fixtures/hardware/SOURCES.md), their wiring in `hardware.detect` with stand-in tools on
PATH, and routing by `gpu_vendor` to what they find."""

from __future__ import annotations

import json
import stat
import sys
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import msgspec
import pytest

from dtf.cli.worker_view import gpu_line
from dtf.core.requirements import never_offered, parse, satisfies, spec
from dtf.runner.child.requirements import MarkerError, check_requirements
from dtf.worker import hardware, probes, probes_gpu, probes_macos, probes_windows
from events.catalogue import Capabilities, Gpu

FIXTURES = Path(__file__).parents[1] / "fixtures" / "hardware"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


MI210 = Gpu("amd", "AMD Instinct MI210", 64.0, driver="6.14.0-24-generic", arch="gfx90a", cores=104)

# --- AMD ----------------------------------------------------------------------------------


def test_amd_smi_static_gives_name_vram_gfx_target_and_driver() -> None:
    assert probes_gpu.parse_amd_smi_static(fixture("amd-smi-static-mi210.json")) == (MI210,)


def test_amd_smi_before_rocm_6_4_printed_the_list_without_gpu_data() -> None:
    # The same recorded GPU in the older top-level-list form.
    records = json.loads(fixture("amd-smi-static-mi210.json"))["gpu_data"]
    assert probes_gpu.parse_amd_smi_static(json.dumps(records)) == (MI210,)


def test_amd_smi_driver_from_the_kernel_keeps_its_release_only() -> None:
    # The fixture's driver.version is /proc/version with its spaces removed (in-tree amdgpu).
    raw = json.loads(fixture("amd-smi-static-mi210.json"))["gpu_data"][0]["driver"]["version"]
    assert raw.startswith("Linuxversion6.14.0-24-generic(")
    record = {"asic": {"market_name": "X"}, "driver": {"version": "6.10.5"}}
    assert probes_gpu.parse_amd_smi_static(json.dumps([record]))[0].driver == "6.10.5"


def test_rocm_smi_gives_series_vram_and_gfx_version() -> None:
    assert probes_gpu.parse_rocm_smi(fixture("rocm-smi-rx7900xt.json")) == (
        Gpu("amd", "Radeon RX 7900 XT", 20.0, arch="gfx1100"),
    )


def test_rocm_smi_reads_the_system_driver_and_skips_warning_lines() -> None:
    # The recorded "no GPU" output: a warning line, then only the system object.
    assert probes_gpu.parse_rocm_smi(fixture("rocm-smi-no-gpu.txt")) == ()
    # Its system object next to the recorded card (two real outputs joined).
    card = json.loads(fixture("rocm-smi-rx7900xt.json"))
    system = probes_gpu.load_json(fixture("rocm-smi-no-gpu.txt"))
    joined = "WARNING: something\n" + json.dumps(card | system)
    assert probes_gpu.parse_rocm_smi(joined)[0].driver == "6.3.6"


# --- Intel --------------------------------------------------------------------------------


def test_xpu_smi_discovery_lists_devices_by_id() -> None:
    listed = Gpu("intel", "Intel(R) Graphics [0x020a]")
    assert probes_gpu.xpu_smi_devices(fixture("xpu-smi-discovery.json")) == ((0, listed),)
    assert probes_gpu.parse_xpu_smi_discovery(fixture("xpu-smi-discovery.json")) == (listed,)


def test_xpu_smi_one_device_adds_memory_and_driver() -> None:
    # `discovery -d N -j` prints one device's properties (names as in xpumanager's
    # comlet_discovery.cpp; values from intel/xpumanager#127).
    detail = {
        "device_id": 0,
        "device_name": "Intel(R) Graphics [0xe211]",
        "device_type": "GPU",
        "driver_version": "7B7A46009E666C4D10E1134",
        "memory_physical_size_byte": "25669140480",
    }
    assert probes_gpu.parse_xpu_smi_discovery(json.dumps(detail)) == (
        Gpu("intel", "Intel(R) Graphics [0xe211]", 23.9, driver="7B7A46009E666C4D10E1134"),
    )


def test_sycl_ls_takes_level_zero_gpus_with_their_ip_version() -> None:
    assert probes_gpu.parse_sycl_ls(fixture("sycl-ls-linux-arc-a770.txt")) == (
        Gpu("intel", "Intel(R) Arc(TM) A770 Graphics", driver="1.3.29735+27", arch="12.55.8"),
        Gpu("intel", "Intel(R) UHD Graphics 730", driver="1.3.29735+27", arch="12.2.0"),
    )


def test_sycl_ls_before_oneapi_2024_and_opencl_only() -> None:
    # The old line form prints the Level Zero API version ("1.3"), which is no architecture.
    assert probes_gpu.parse_sycl_ls(fixture("sycl-ls-windows-iris-xe.txt")) == (
        Gpu("intel", "Intel(R) Iris(R) Xe Graphics", driver="1.3.28044"),
    )
    opencl = [ln for ln in fixture("sycl-ls-linux-arc-a770.txt").splitlines() if "opencl" in ln]
    assert [g.name for g in probes_gpu.parse_sycl_ls("\n".join(opencl))] == [
        "Intel(R) Arc(TM) A770 Graphics",
        "Intel(R) UHD Graphics 730",
    ]
    # An NVIDIA GPU through SYCL's CUDA backend is NVML's to report, and a CPU is no GPU.
    assert probes_gpu.parse_sycl_ls(fixture("sycl-ls-cuda-only.txt")) == ()


# --- Apple --------------------------------------------------------------------------------


def test_system_profiler_apple_gpu_shares_the_machine_memory() -> None:
    gpus = probes_gpu.parse_system_profiler_displays(
        fixture("system-profiler-displays-m1.json"), memory_gb=16.0
    )
    # "_name" is the untranslated "kHW_AppleM1Item"; the model names it.
    assert gpus == (Gpu("apple", "Apple M1", 16.0, arch="metal3", cores=7, unified_memory=True),)


def test_sysctl_of_apple_silicon() -> None:
    cpu, memory = probes_macos.parse_sysctl(fixture("sysctl-darwin-sequoia-m3-max.txt"))
    assert (cpu.model, cpu.logical, cpu.physical, cpu.performance_cores) == (
        "Apple M3 Max",
        14,
        14,
        10,
    )
    assert memory == 36 * 2**30
    # FEAT_* under their Linux names too, so cpu_flags=asimddp means one thing everywhere.
    assert {"neon", "asimd", "dotprod", "asimddp", "atomics", "bf16", "i8mm", "sha3"} <= set(
        cpu.flags
    )
    assert "sme" not in cpu.flags  # hw.optional.arm.FEAT_SME: 0
    assert (cpu.mhz, cpu.base_mhz) == (0.0, 0.0)  # arm64 Macs publish no clock


def test_sysctl_of_an_intel_mac() -> None:
    cpu, memory = probes_macos.parse_sysctl(fixture("sysctl-darwin-mojave-skylake.txt"))
    assert cpu.model == "Intel(R) Core(TM) i7-6700K CPU @ 4.00GHz"
    assert cpu.base_mhz == 4000.0
    assert {"avx", "avx2", "fma", "sse4_1", "sse4_2", "bmi2", "f16c", "lahf_lm"} <= set(cpu.flags)
    assert "avx512f" not in cpu.flags
    assert (cpu.logical, cpu.performance_cores, memory) == (0, 0, 0)  # not in this sample


# --- Windows ------------------------------------------------------------------------------


def test_win32_processor_sums_sockets() -> None:
    one = fixture("win32-processor-xeon-e5506.json")
    cpu = probes_windows.parse_win32_processor(one)
    assert (cpu.model, cpu.physical, cpu.logical, cpu.mhz, cpu.base_mhz) == (
        "Intel(R) Xeon(R) CPU E5506 @ 2.13GHz",
        4,
        4,
        2000.0,
        2130.0,
    )
    two = json.dumps([json.loads(one)] * 2)  # ConvertTo-Json writes an array for two sockets
    assert probes_windows.parse_win32_processor(two).physical == 8


def test_win32_video_controllers() -> None:
    assert probes_windows.parse_win32_video_controllers(
        fixture("win32-videocontroller-radeon.json")
    ) == (
        Gpu("amd", "AMD Radeon(TM) Graphics", driver="31.0.24019.1006"),
        Gpu("amd", "AMD Radeon RX 7900 XTX", driver="31.0.24019.1006"),
    )
    # AdapterRAM is a uint32: 4293918720 (as Timthreetwelve/TimVer#103 shows for a 16 GB
    # card) is its ceiling and says nothing; a smaller value is the card's.
    big = {"Name": "AMD Radeon RX 7800 XT", "AdapterRAM": 4293918720}
    igpu = {"Name": "Intel(R) UHD Graphics 630", "AdapterCompatibility": "Intel Corporation"}
    basic = {"Name": "Microsoft Basic Display Adapter", "AdapterCompatibility": "(Standard)"}
    adapters = [big, igpu | {"AdapterRAM": 1073741824}, basic]
    assert probes_windows.parse_win32_video_controllers(json.dumps(adapters)) == (
        Gpu("amd", "AMD Radeon RX 7800 XT"),
        Gpu("intel", "Intel(R) UHD Graphics 630", 1.0),
    )


# --- NVIDIA additions and clocks ---------------------------------------------------------


def test_nvidia_cuda_version_from_the_header_and_from_nvml() -> None:
    assert probes.parse_nvidia_smi_cuda(fixture("nvidia-smi-titanxp-cuda11.txt")) == "11.0"
    assert probes.parse_nvidia_smi_cuda("NVIDIA-SMI has failed") == ""
    assert (probes.cuda_version(12020), probes.cuda_version(11080), probes.cuda_version(0)) == (
        "12.2",
        "11.8",
        "",
    )
    nvml = SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlShutdown=lambda: None,
        nvmlSystemGetDriverVersion=lambda: "535.54.03",
        nvmlSystemGetCudaDriverVersion=lambda: 12020,
        nvmlDeviceGetCount=lambda: 1,
        nvmlDeviceGetHandleByIndex=lambda i: i,
        nvmlDeviceGetName=lambda i: "NVIDIA H100 80GB HBM3",
        nvmlDeviceGetMemoryInfo=lambda i: SimpleNamespace(total=85520809984),
        nvmlDeviceGetCudaComputeCapability=lambda i: (9, 0),
    )
    assert probes.nvml_gpus(nvml)[0].cuda == "12.2"


def test_base_clock_from_the_model_name() -> None:
    assert probes.parse_base_mhz("Intel(R) Xeon(R) CPU E5506 @ 2.13GHz") == 2130.0
    assert probes.parse_base_mhz("AMD EPYC 7R13 Processor") == 0.0
    x86 = probes.parse_cpuinfo(fixture("cpuinfo-x86-xeon-2vcpu.txt"))
    assert x86.base_mhz == 0.0  # a VM's "Intel(R) Xeon(R) Processor" names no clock
    assert probes.parse_max_khz("2600000\n") == 2600.0  # cpufreq's base_frequency, in kHz


# --- What cannot be read gives nothing ---------------------------------------------------

GPU_PARSERS: list[Callable[[str], tuple[Gpu, ...]]] = [
    probes_gpu.parse_amd_smi_static,
    probes_gpu.parse_rocm_smi,
    probes_gpu.parse_xpu_smi_discovery,
    probes_gpu.parse_sycl_ls,
    probes_gpu.parse_system_profiler_displays,
    probes_windows.parse_win32_video_controllers,
]
GARBAGE = [
    "",
    "not json",
    "{}",
    "[]",
    "null",
    "[1, 2]",
    '{"gpu_data": 5, "device_list": "x", "SPDisplaysDataType": {}}',
    '{"card0": "x", "system": null}',
    '[{"asic": null}, {"vram": {"size": "big"}}]',
    "\x00\xff{[",
    "WARNING: [amd] nothing here\n",
]


@pytest.mark.parametrize("parser", GPU_PARSERS, ids=lambda p: p.__name__)
@pytest.mark.parametrize("garbage", GARBAGE)
def test_unreadable_output_gives_no_gpus(
    parser: Callable[[str], tuple[Gpu, ...]], garbage: str
) -> None:
    assert parser(garbage) == ()


@pytest.mark.parametrize("garbage", GARBAGE)
def test_unreadable_cpu_output_gives_an_empty_cpu(garbage: str) -> None:
    assert probes_macos.parse_sysctl(garbage) == (probes.CpuInfo(), 0)
    assert probes_windows.parse_win32_processor(garbage) == probes.CpuInfo()


# --- Wiring: stand-in tools on PATH -------------------------------------------------------

posix_only = pytest.mark.skipif(sys.platform == "win32", reason="stand-in tools are sh scripts")


def tool(directory: Path, name: str, script: str) -> None:
    """A stand-in `name` on PATH running `script` (sh); its arguments are "$@"."""
    path = directory / name
    path.write_text(f"#!/bin/sh\n{script}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)


def cat(name: str) -> str:
    return f"/bin/cat '{FIXTURES / name}'"


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """PATH holds only this folder: no real nvidia-smi, amd-smi or others are found, and NVML
    is made to fail as it does without a driver."""
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails: no nvidia-ml-py
    return tmp_path


@posix_only
def test_detect_reports_amd_smi_gpus(bin_dir: Path, tmp_path: Path) -> None:
    tool(bin_dir, "amd-smi", cat("amd-smi-static-mi210.json"))
    tool(bin_dir, "rocm-smi", "exit 3")  # never asked: amd-smi answered
    caps = hardware.detect(cache_dir=tmp_path)
    assert caps.gpus == (MI210,)
    assert satisfies(caps, parse("gpu_vendor=amd,gpu_memory_gb=32"))


@posix_only
def test_rocm_smi_stands_in_when_amd_smi_is_absent_or_fails(bin_dir: Path) -> None:
    tool(bin_dir, "rocm-smi", cat("rocm-smi-rx7900xt.json"))
    expected = (Gpu("amd", "Radeon RX 7900 XT", 20.0, arch="gfx1100"),)
    assert hardware.detect_gpus(0.0, "linux") == expected
    tool(bin_dir, "amd-smi", "echo 'amdsmi_init failed' >&2; exit 1")
    assert hardware.detect_gpus(0.0, "linux") == expected


@posix_only
def test_intel_tools_and_a_vendor_mix(bin_dir: Path) -> None:
    tool(
        bin_dir,
        "xpu-smi",
        f'[ "$2" = "-d" ] && exit 1\n{cat("xpu-smi-discovery.json")}',  # no detail: the listing
    )
    tool(bin_dir, "amd-smi", cat("amd-smi-static-mi210.json"))
    assert hardware.detect_gpus(0.0, "linux") == (MI210, Gpu("intel", "Intel(R) Graphics [0x020a]"))
    (bin_dir / "xpu-smi").unlink()
    tool(bin_dir, "sycl-ls", cat("sycl-ls-windows-iris-xe.txt"))
    assert [g.vendor for g in hardware.detect_gpus(0.0, "linux")] == ["amd", "intel"]


@posix_only
def test_a_hanging_or_broken_probe_gives_no_gpus_and_the_worker_starts(
    bin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hardware, "TOOL_TIMEOUT_S", 0.5)
    tool(bin_dir, "amd-smi", "exec /bin/sleep 30")
    tool(bin_dir, "xpu-smi", "echo '{\"device_list\": [' ")  # cut short
    tool(bin_dir, "sycl-ls", "exit 0")
    assert hardware.detect(cache_dir=tmp_path).gpus == ()

    def broken() -> tuple[Gpu, ...]:
        raise RuntimeError("a bug in a probe")

    monkeypatch.setattr(hardware, "amd_gpus", broken)
    tool(bin_dir, "sycl-ls", cat("sycl-ls-linux-arc-a770.txt"))
    assert len(hardware.detect_gpus(0.0, "linux")) == 2


@posix_only
def test_nvidia_smi_fallback_adds_the_cuda_version_of_its_header(bin_dir: Path) -> None:
    # The CSV line restates the recorded table's GPU (TITAN Xp, 12196 MiB, driver 450.57).
    tool(
        bin_dir,
        "nvidia-smi",
        'case "$1" in --query-gpu=*) echo "TITAN Xp, 12196, 6.1, 450.57" ;;\n'
        f"  *) {cat('nvidia-smi-titanxp-cuda11.txt')} ;;\nesac",
    )
    assert hardware.detect_gpus(0.0, "linux") == (
        Gpu("nvidia", "TITAN Xp", 11.9, compute_capability="6.1", driver="450.57", cuda="11.0"),
    )


@posix_only
def test_macos_wiring(bin_dir: Path) -> None:
    tool(bin_dir, "sysctl", cat("sysctl-darwin-sequoia-m3-max.txt"))
    tool(bin_dir, "system_profiler", cat("system-profiler-displays-m1.json"))
    cpu = hardware.cpu_info("darwin")
    assert (cpu.model, cpu.performance_cores) == ("Apple M3 Max", 10)
    assert hardware.detect_gpus(36.0, "darwin") == (
        Gpu("apple", "Apple M1", 36.0, arch="metal3", cores=7, unified_memory=True),
    )
    # system_profiler is asked on macOS only.
    assert hardware.detect_gpus(36.0, "linux") == ()


@posix_only
def test_windows_wiring(bin_dir: Path) -> None:
    tool(
        bin_dir,
        "pwsh",
        'case "$*" in\n'
        f"  *Win32_Processor*) {cat('win32-processor-xeon-e5506.json')} ;;\n"
        f"  *Win32_VideoController*) {cat('win32-videocontroller-radeon.json')} ;;\n"
        "esac",
    )
    assert hardware.cpu_info("win32").physical == 4
    assert [g.name for g in hardware.detect_gpus(0.0, "win32")] == [
        "AMD Radeon(TM) Graphics",
        "AMD Radeon RX 7900 XTX",
    ]
    # A vendor's own tool wins over the display adapters' list.
    tool(bin_dir, "amd-smi", cat("amd-smi-static-mi210.json"))
    assert hardware.detect_gpus(0.0, "win32") == (MI210,)


# --- Routing and the wire format ---------------------------------------------------------


def caps_with(*gpus: Gpu) -> Capabilities:
    return Capabilities(platform="linux", hostname="h", cpus=8, memory_gb=64.0, gpus=gpus)


def test_gpu_vendor_amd_routes_to_amd_gpus_only() -> None:
    amd, cpu_only = caps_with(MI210), caps_with()
    nvidia = caps_with(Gpu("nvidia", "NVIDIA H100 80GB HBM3", 79.6, compute_capability="9.0"))
    for text in ("gpu_vendor=amd", "gpu_vendor=AMD,gpus=1", "gpu_vendor=amd,gpu_memory_gb=64"):
        req = parse(text)
        assert satisfies(amd, req) and not satisfies(cpu_only, req) and not satisfies(nvidia, req)
    assert not satisfies(amd, parse("gpu_vendor=amd,gpus=2"))
    # compute_capability is NVIDIA's: an AMD GPU never meets it.
    assert not satisfies(amd, parse("compute_capability=8.0"))


def test_gpu_arch_routes_to_the_gfx_target_a_build_was_made_for() -> None:
    mi210 = caps_with(MI210)
    rx7900 = caps_with(Gpu("amd", "Radeon RX 7900 XT", 20.0, arch="gfx1100"))
    req = parse("gpu_arch=gfx90a")
    assert req.gpu_arch == "gfx90a" and spec(req) == "gpu_arch=gfx90a"
    assert satisfies(mi210, req) and not satisfies(rx7900, req)
    assert satisfies(rx7900, parse("gpu_vendor=amd,gpu_arch=GFX1100"))
    assert not satisfies(caps_with(), req)
    # A fleet of RX 7900s never offered gfx90a: such tests are skipped, not waited for.
    assert never_offered([rx7900], [req]) == [req] and never_offered([mi210], [req]) == []
    # The marker takes it too.
    assert check_requirements({"gpu_arch": "gfx90a"}) == {"gpu_arch": "gfx90a"}
    with pytest.raises(MarkerError, match="gpu_arch"):
        check_requirements({"gpu_arch": 90})


def test_new_gpu_fields_keep_old_events_readable() -> None:
    old = b'{"vendor":"nvidia","name":"A10G","memory_gb":22.5,"compute_capability":"8.6"}'
    gpu = msgspec.json.decode(old, type=Gpu)
    assert (gpu.arch, gpu.cuda, gpu.cores, gpu.unified_memory) == ("", "", 0, False)
    assert msgspec.json.encode(gpu) == old  # defaults are left out
    old_caps = b'{"platform":"linux","hostname":"h","cpus":2,"memory_gb":4}'
    caps = msgspec.json.decode(old_caps, type=Capabilities)
    assert (caps.cpu_base_mhz, caps.performance_cores) == (0.0, 0)


def test_show_worker_prints_the_new_gpu_fields() -> None:
    assert gpu_line(MI210) == (
        "gpu: amd AMD Instinct MI210 (64 GB, gfx90a, 104 cores, driver 6.14.0-24-generic)"
    )
    apple = Gpu("apple", "Apple M1", 16.0, arch="metal3", cores=7, unified_memory=True)
    assert gpu_line(apple) == "gpu: apple Apple M1 (16 GB unified, metal3, 7 cores)"
    h100 = Gpu("nvidia", "H100", 79.6, compute_capability="9.0", driver="535.54.03", cuda="12.2")
    assert gpu_line(h100) == "gpu: nvidia H100 (79.6 GB, compute 9.0, driver 535.54.03, CUDA 12.2)"
