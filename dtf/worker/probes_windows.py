"""Reading a Windows machine's CPU and GPUs out of PowerShell's CIM queries.

`dtf.worker.hardware` runs `Get-CimInstance Win32_Processor | Select-Object ... | ConvertTo-Json`
and the same for `Win32_VideoController`. ConvertTo-Json writes one object for one instance
and an array for several (one Win32_Processor per socket). Property meanings are Microsoft's
(Win32_Processor: `NumberOfCores`, `NumberOfLogicalProcessors`, `MaxClockSpeed` in MHz;
Win32_VideoController: `AdapterRAM` in bytes, a uint32, so 4 GiB and more read as ~4 GiB).
"""

from __future__ import annotations

import json
from typing import Any

from dtf.worker.probes import CpuInfo, parse_base_mhz
from events.catalogue import Gpu

PROCESSOR_QUERY = (
    "Get-CimInstance Win32_Processor | Select-Object Name,NumberOfCores,"
    "NumberOfLogicalProcessors,MaxClockSpeed | ConvertTo-Json"
)
VIDEO_QUERY = (
    "Get-CimInstance Win32_VideoController | Select-Object Name,AdapterCompatibility,"
    "AdapterRAM,DriverVersion,VideoProcessor | ConvertTo-Json"
)
# AdapterRAM is a uint32: a card of 4 GiB or more reports its ceiling, which says nothing.
_ADAPTER_RAM_CEILING = 2**32 - 2**20


def _records(text: str) -> list[dict[str, Any]]:
    try:
        document = json.loads(text) if text.strip() else None
    except ValueError:
        return []
    items = document if isinstance(document, list) else [document]
    return [item for item in items if isinstance(item, dict)]


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_win32_processor(text: str) -> CpuInfo:
    """The processors (sockets) of Win32_Processor, their cores and threads summed."""
    sockets = _records(text)
    if not sockets:
        return CpuInfo()
    model = str(sockets[0].get("Name") or "").strip()
    return CpuInfo(
        model=model,
        logical=sum(_int(s.get("NumberOfLogicalProcessors")) for s in sockets),
        physical=sum(_int(s.get("NumberOfCores")) for s in sockets),
        mhz=float(max(_int(s.get("MaxClockSpeed")) for s in sockets)),
        base_mhz=parse_base_mhz(model),
    )


_VENDORS = (
    ("nvidia", ("nvidia",)),
    ("amd", ("advanced micro devices", "amd", "radeon", "ati ")),
    ("intel", ("intel",)),
)


def parse_win32_video_controllers(text: str) -> tuple[Gpu, ...]:
    """The display adapters of Win32_VideoController that are NVIDIA, AMD or Intel GPUs;
    Microsoft's basic and remote display adapters and virtual ones are left out."""
    gpus = []
    for adapter in _records(text):
        name = str(adapter.get("Name") or "").strip()
        keys = ("AdapterCompatibility", "Name", "VideoProcessor")
        said = " ".join(str(adapter.get(key) or "") for key in keys).lower()
        vendor = next((v for v, words in _VENDORS if any(w in said for w in words)), "")
        if not vendor or not name:
            continue
        ram = _int(adapter.get("AdapterRAM"))
        memory = round(ram / 2**30, 1) if 0 < ram < _ADAPTER_RAM_CEILING else 0.0
        driver = str(adapter.get("DriverVersion") or "").strip()
        gpus.append(Gpu(vendor, name, memory, driver=driver))
    return tuple(gpus)
