"""The hardware class results and errors are grouped by, from a worker's capabilities:
'linux-8cpu-32gb' or 'linux-32cpu-256gb-1xH100' (memory snapped to the size machines are sold
in, GPU names shortened to their model), so that two machines of one kind share a series."""

from __future__ import annotations

import re

from events.catalogue import Capabilities

# Words in GPU names that say who made it or how it is packaged, not what it is.
_GPU_NOISE = {"nvidia", "amd", "intel", "geforce", "tesla", "radeon", "instinct", "quadro", "pcie"}
_GPU_MEMORY = re.compile(r"^\d+(gb|g)$|^hbm\d*e?$")


def memory_class(gb: float) -> int:
    """Memory in GiB as machines are sold: the nearest power of two when within 10%
    (31.3 -> 32, 251.5 -> 256), else rounded (48.0 -> 48)."""
    if gb <= 0:
        return 0
    power = 1 << max(0, round(gb).bit_length() - 1)
    for candidate in (power, power * 2):
        if abs(gb - candidate) <= 0.1 * candidate:
            return candidate
    return max(1, round(gb))


def gpu_model(name: str, vendor: str = "") -> str:
    """A short GPU model from its marketing name: 'NVIDIA H100 80GB HBM3' -> 'H100',
    'NVIDIA GeForce RTX 4090' -> 'RTX4090', 'Tesla V100-SXM2-16GB' -> 'V100'."""
    words = [w for w in re.split(r"[\s_\-]+", name.lower()) if w]
    kept: list[str] = []
    for word in words:
        if word in _GPU_NOISE or _GPU_MEMORY.match(word):
            continue
        kept.append(word)
        if any(ch.isdigit() for ch in word):
            break
    return "".join(kept).upper() or (vendor or "gpu").upper()


def hardware_class(caps: Capabilities) -> str:
    """e.g. 'linux-8cpu-32gb' or 'linux-32cpu-256gb-1xH100' (GPUs grouped by model)."""
    parts = [caps.platform or "unknown", f"{caps.cpus}cpu", f"{memory_class(caps.memory_gb)}gb"]
    counts: dict[str, int] = {}
    for gpu in caps.gpus:
        model = gpu_model(gpu.name, gpu.vendor)
        counts[model] = counts.get(model, 0) + 1
    parts.extend(f"{n}x{model}" for model, n in sorted(counts.items()))
    return "-".join(parts)
