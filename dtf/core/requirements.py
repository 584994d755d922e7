"""Does a worker's hardware satisfy a task's requirements?"""

from __future__ import annotations

import math

from events.catalogue import Capabilities, Requirements


def satisfies(caps: Capabilities, req: Requirements) -> bool:
    """True when every non-empty requirement is met; labels must all be present."""
    if req.platform and caps.platform != req.platform:
        return False
    if req.cpus and caps.cpus < req.cpus:
        return False
    if req.memory_gb and caps.memory_gb < req.memory_gb:
        return False
    if req.gpus or req.gpu_vendor or req.gpu_memory_gb:
        fitting = [
            g
            for g in caps.gpus
            if (not req.gpu_vendor or g.vendor.lower() == req.gpu_vendor.lower())
            and g.memory_gb >= req.gpu_memory_gb
        ]
        if len(fitting) < max(1, req.gpus):
            return False
    return set(req.labels) <= set(caps.labels)


def parse(spec: str) -> Requirements:
    """Parse `cpus=4,memory_gb=8,gpus=1,gpu_vendor=nvidia,label=fast,platform=linux`.

    Raises ValueError with a message naming the bad part.
    """
    fields: dict[str, object] = {}
    labels: list[str] = []
    for part in filter(None, (p.strip() for p in spec.split(","))):
        key, sep, value = part.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not value:
            raise ValueError(f"requirement {part!r} is not key=value")
        if key in ("cpus", "gpus", "memory_gb", "gpu_memory_gb"):
            fields[key] = _amount(key, value)
        elif key in ("label", "labels", "platform", "gpu_vendor"):
            if not encodable(value):
                raise ValueError(f"{key} must be valid UTF-8 text, got {value!r}")
            if key in ("label", "labels"):
                labels.append(value)
            else:
                fields[key] = value
        else:
            raise ValueError(
                f"unknown requirement {key!r} (known: platform, cpus, memory_gb, gpus, "
                "gpu_vendor, gpu_memory_gb, label)"
            )
    return Requirements(labels=tuple(labels), **fields)  # type: ignore[arg-type]


def spec(req: Requirements) -> str:
    """The `--requires` text of `req` (what `parse` reads back); "" for no requirements."""
    parts = [
        f"{key}={value:g}" if isinstance(value, float) else f"{key}={value}"
        for key in ("platform", "cpus", "memory_gb", "gpus", "gpu_vendor", "gpu_memory_gb")
        if (value := getattr(req, key))
    ]
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
