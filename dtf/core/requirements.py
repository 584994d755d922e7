"""Does a worker's hardware satisfy a task's requirements?"""

from __future__ import annotations

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
        if key in ("label", "labels"):
            labels.append(value)
        elif key in ("cpus", "gpus", "memory_gb", "gpu_memory_gb"):
            kind = int if key in ("cpus", "gpus") else float
            try:
                fields[key] = kind(value)
            except ValueError:
                raise ValueError(f"{key} must be a number, got {value!r}") from None
        elif key in ("platform", "gpu_vendor"):
            fields[key] = value
        else:
            raise ValueError(
                f"unknown requirement {key!r} (known: platform, cpus, memory_gb, gpus, "
                "gpu_vendor, gpu_memory_gb, label)"
            )
    return Requirements(labels=tuple(labels), **fields)  # type: ignore[arg-type]
