"""Does a worker's hardware satisfy a task's requirements?"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from events.catalogue import Capabilities, Requirements


def satisfies(caps: Capabilities, req: Requirements) -> bool:
    """True when every non-empty requirement is met; labels must all be present."""
    if req.platform and caps.platform != req.platform:
        return False
    if req.cpus and caps.cpus < req.cpus:
        return False
    if req.memory_gb and caps.memory_gb < req.memory_gb:
        return False
    if req.gpus or req.gpu_vendor or req.gpu_memory_gb or req.compute_capability or req.gpu_arch:
        fitting = [
            g
            for g in caps.gpus
            if (not req.gpu_vendor or g.vendor.lower() == req.gpu_vendor.lower())
            and (not req.gpu_arch or g.arch.lower() == req.gpu_arch.lower())
            and g.memory_gb >= req.gpu_memory_gb
            and _capability(g.compute_capability) >= req.compute_capability
        ]
        if len(fitting) < max(1, req.gpus):
            return False
    if req.cpu_flags and not {f.lower() for f in req.cpu_flags} <= set(caps.cpu_flags):
        return False
    return set(req.labels) <= set(caps.labels)


def never_offered(
    offered: Iterable[Capabilities], wanted: Iterable[Requirements]
) -> list[Requirements]:
    """Those of `wanted` that none of `offered` (every worker that ever registered) meets;
    none when no worker ever registered (then nothing is known about the fleet yet)."""
    machines = list(offered)
    if not machines:
        return []
    return [req for req in dict.fromkeys(wanted) if not any(satisfies(m, req) for m in machines)]


def _capability(text: str) -> float:
    """NVIDIA's "8.6" as 8.6 ("" and anything unreadable: 0, never enough)."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def parse(spec: str) -> Requirements:
    """Parse `cpus=4,memory_gb=8,gpus=1,gpu_vendor=nvidia,label=fast,platform=linux`,
    `gpu_arch=gfx90a`,
    `cpu_flags=avx512f` (repeatable) and `compute_capability>=8.0`; an amount may be written
    `>=` too (it always means at least).

    Raises ValueError with a message naming the bad part.
    """
    fields: dict[str, Any] = {}
    lists: dict[str, list[str]] = {"labels": [], "cpu_flags": []}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        at_least = key.endswith(">")
        key = key.removesuffix(">").strip()
        if not sep or not value:
            raise ValueError(f"requirement {part!r} is not key=value")
        if key in _AMOUNT_KEYS:
            fields[key] = _amount(key, value)
        elif at_least:
            raise ValueError(f"{key} is not an amount: write {key}={value}")
        elif key in (
            "label",
            "labels",
            "cpu_flag",
            "cpu_flags",
            "platform",
            "gpu_vendor",
            "gpu_arch",
        ):
            if not encodable(value):
                raise ValueError(f"{key} must be valid UTF-8 text, got {value!r}")
            if key in ("label", "labels"):
                lists["labels"].append(value)
            elif key in ("cpu_flag", "cpu_flags"):
                lists["cpu_flags"].append(value.lower())
            else:
                fields[key] = value
        else:
            raise ValueError(
                f"unknown requirement {key!r} (known: platform, cpus, memory_gb, gpus, "
                "gpu_vendor, gpu_arch, gpu_memory_gb, compute_capability, cpu_flags, label)"
            )
    return Requirements(
        labels=tuple(lists["labels"]), cpu_flags=tuple(lists["cpu_flags"]), **fields
    )


_AMOUNT_KEYS = ("cpus", "gpus", "memory_gb", "gpu_memory_gb", "compute_capability")


def spec(req: Requirements) -> str:
    """The `--requires` text of `req` (what `parse` reads back); "" for no requirements."""
    parts = [
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
        for key in (
            "platform",
            "cpus",
            "memory_gb",
            "gpus",
            "gpu_vendor",
            "gpu_arch",
            "gpu_memory_gb",
            "compute_capability",
        )
        if (value := getattr(req, key))
    ]
    parts += [f"cpu_flags={flag}" for flag in req.cpu_flags]
    return ",".join([*parts, *(f"label={label}" for label in req.labels)])


def _amount(key: str, value: str) -> int | float:
    """A count (cpus, gpus) or a size in GB: finite and >= 0, or ValueError naming the key.

    A negative count would make a task no worker can ever take, and NaN or infinity cannot be
    written in a TaskQueued event at all.
    """
    whole = key in ("cpus", "gpus")
    problem = f"{key} must be {'a whole' if whole else 'a finite'} number >= 0, got {value!r}"
    try:
        number: int | float = int(value) if whole else float(value)
    except ValueError:
        raise ValueError(problem) from None
    # NaN fails both tests; an int is always finite (and too big for math.isfinite when huge).
    if not number >= 0 or (not whole and not math.isfinite(number)):
        raise ValueError(problem)
    return number


def encodable(value: str) -> bool:
    """Whether text can be written as UTF-8: undecodable bytes on the command line arrive as
    lone surrogates, which no event can hold."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True
