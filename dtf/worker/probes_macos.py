"""Reading a Mac's CPU out of `sysctl hw machdep.cpu` ("name: value" lines, sysctl(8)).

Apple silicon names its chip in `machdep.cpu.brand_string` ("Apple M3 Max"), counts its
performance cores in `hw.perflevel0.physicalcpu` and lists its instruction-set features as
`hw.optional.arm.FEAT_*` and `hw.optional.neon` (1: present). Intel Macs list CPUID features
in `machdep.cpu.features`, `machdep.cpu.leaf7_features` and `machdep.cpu.extfeatures`, in
Intel's spelling ("AVX1.0", "SSE4.2"). Flags are given Linux's /proc/cpuinfo names where those
differ, so that `cpu_flags=asimd` or `cpu_flags=avx2` means the same on either system.
"""

from __future__ import annotations

from dtf.worker.probes import CpuInfo, parse_base_mhz

# Arm's FEAT_* names (and older hw.optional keys) as the Linux kernel's hwcaps spell them
# (arch/arm64/kernel/cpuinfo.c); a flag not in this table keeps its own name, lower-cased.
_ARM_LINUX_NAMES = {
    "advsimd": ("asimd",),
    "neon": ("asimd",),
    "dotprod": ("asimddp",),
    "lse": ("atomics",),
    "armv8_1_atomics": ("atomics",),
    "fp16": ("fphp", "asimdhp"),
    "fhm": ("asimdfhm",),
    "rdm": ("asimdrdm",),
    "sha256": ("sha2",),
    "armv8_crc32": ("crc32",),
    "lrcpc2": ("ilrcpc",),
    "pauth": ("paca", "pacg"),
    "dpb": ("dcpop",),
    "dpb2": ("dcpodp",),
    "bf16": ("bf16",),
    "i8mm": ("i8mm",),
}
# Intel's CPUID names as Linux prints them, where they differ beyond case.
_X86_LINUX_NAMES = {
    "avx1.0": "avx",
    "sse4.1": "sse4_1",
    "sse4.2": "sse4_2",
    "sse3": "pni",
    "rdwrfsgs": "fsgsbase",
    "clfsopt": "clflushopt",
    "lahf": "lahf_lm",
    "lzcnt": "abm",
    "em64t": "lm",
    "xd": "nx",
    "clfsh": "clflush",
    "mon": "monitor",
    "dscpl": "ds_cpl",
    "htt": "ht",
}


def parse_sysctl(text: str) -> tuple[CpuInfo, int]:
    """This Mac's CPU and its memory in bytes (`hw.memsize`, 0 when absent)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() and " " not in key.strip():
            values[key.strip()] = value.strip()
    flags: set[str] = set()
    for key, value in values.items():
        if key.startswith("hw.optional.") and value == "1":
            name = key.removeprefix("hw.optional.").removeprefix("arm.").lower()
            name = name.removeprefix("feat_")
            flags.add(name)
            flags.update(_ARM_LINUX_NAMES.get(name, ()))
    for key in ("machdep.cpu.features", "machdep.cpu.leaf7_features", "machdep.cpu.extfeatures"):
        for word in values.get(key, "").split():
            flags.add(_X86_LINUX_NAMES.get(word.lower(), word.lower()))
    model = values.get("machdep.cpu.brand_string", "")
    # hw.cpufrequency is in Hz and exists on Intel Macs only.
    mhz = _count(values.get("hw.cpufrequency_max") or values.get("hw.cpufrequency")) / 1e6
    cpu = CpuInfo(
        model=model,
        logical=_count(values.get("hw.logicalcpu") or values.get("machdep.cpu.thread_count")),
        physical=_count(values.get("hw.physicalcpu") or values.get("machdep.cpu.core_count")),
        flags=tuple(sorted(flags - {"arm64", "caps"})),
        mhz=round(mhz, 1),
        base_mhz=parse_base_mhz(model),
        performance_cores=_count(values.get("hw.perflevel0.physicalcpu"))
        if _count(values.get("hw.nperflevels")) > 1
        else 0,
    )
    return cpu, _count(values.get("hw.memsize"))


def _count(text: str | None) -> int:
    try:
        return max(0, int(text or "0"))
    except ValueError:
        return 0
