"""Reading AMD, Intel and Apple GPUs out of what their tools print.

Pure parsers, each of one tool's documented output (NVIDIA's are in `dtf.worker.probes`):

- `amd-smi static --json` (ROCm 6+): a list of GPUs, or since ROCm 6.4 an object holding it
  as `gpu_data`; each with `asic` (`market_name`, `target_graphics_version`,
  `num_compute_units`), `vram` (`size` as {"value", "unit"}) and `driver` (`version`).
- `rocm-smi --showproductname --showmeminfo vram --showdriverversion --json`: one object per
  `cardN` ("Card Series", "GFX Version", "VRAM Total Memory (B)") and a `system` object with
  "Driver version"; warnings may come first ("WARNING: No AMD GPUs specified").
- `xpu-smi discovery -j` (Intel XPU Manager): `device_list` of devices, or one device's object
  (`discovery -d N -j`) which adds `memory_physical_size_byte` and `driver_version`.
- `sycl-ls`: one line per SYCL device, "[backend:type][backend:N] Platform, Device V [driver]"
  (oneAPI 2024+) or "[backend:type:N] Platform, Device V [driver]" (before).
- `system_profiler SPDisplaysDataType -json` (macOS): `SPDisplaysDataType`, one entry per GPU
  (`sppci_model`, `sppci_cores`, `spdisplays_vendor`, the Metal family).

Each gives no GPUs, never an exception, for output it cannot read.
`dtf.worker.hardware` runs the tools; tests feed recorded outputs (tests/fixtures/hardware/).
"""

from __future__ import annotations

import json
import re
from typing import Any

from events.catalogue import Gpu


def load_json(text: str) -> Any:
    """The JSON document in a tool's output, skipping warning lines printed before it; None
    when there is none."""
    start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
    while start >= 0:
        try:
            return json.JSONDecoder().raw_decode(text, start)[0]
        except ValueError:
            # "[" or "{" inside a warning line: try the next line that opens a document.
            nxt = [i for i in (text.find("\n{", start), text.find("\n[", start)) if i >= 0]
            start = min(nxt) + 1 if nxt else -1
    return None


def _field(record: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(record, dict):
            return None
        record = record.get(key)
    return record


def _text(value: Any) -> str:
    """A tool's string, "" for its "N/A" and for anything that is not text or a number."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return ""
    text = str(value).strip()
    return "" if text.upper() in ("N/A", "NA", "UNKNOWN") else text


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return 0.0
    try:
        number = float(value)
    except (TypeError, ValueError):
        return 0.0
    return number if number > 0 and number != float("inf") else 0.0


def _gib(count: float) -> float:
    return round(count / 2**30, 1)


_SIZE_UNITS = {"B": 1, "KB": 2**10, "MB": 2**20, "GB": 2**30, "TB": 2**40}


def _amd_size(value: Any) -> float:
    """amd-smi's memory sizes in GiB: {"value": 65520, "unit": "MB"} (its MB are MiB), or a
    bare number of MB as older releases print."""
    if isinstance(value, dict):
        unit = _SIZE_UNITS.get(str(value.get("unit", "MB")).upper(), 0)
        return _gib(_number(value.get("value")) * unit)
    return _gib(_number(value) * 2**20)


_LINUX_VERSION = re.compile(r"^Linuxversion(\S+?)\(")


def _amd_driver(version: str) -> str:
    """With the kernel's own amdgpu (no DKMS package), amd-smi prints /proc/version with its
    spaces removed; the kernel release is the driver's version then."""
    found = _LINUX_VERSION.match(version)
    return found[1] if found else version


def parse_amd_smi_static(text: str) -> tuple[Gpu, ...]:
    """`amd-smi static --json`: each GPU's market name, VRAM, gfx target, compute units and
    driver."""
    document = load_json(text)
    records = document.get("gpu_data") if isinstance(document, dict) else document
    if not isinstance(records, list):
        return ()
    gpus = []
    for record in records:
        asic = _field(record, "asic")
        if not isinstance(asic, dict):
            continue
        # Some boards have a generic market name; the board's product name is then better.
        name = _text(asic.get("market_name")) or _text(_field(record, "board", "product_name"))
        vram = _field(record, "vram")
        size = vram.get("size", vram.get("vram_size")) if isinstance(vram, dict) else None
        gpus.append(
            Gpu(
                "amd",
                name,
                _amd_size(size),
                driver=_amd_driver(_text(_field(record, "driver", "version"))),
                arch=_text(asic.get("target_graphics_version")),
                cores=int(_number(asic.get("num_compute_units"))),
            )
        )
    return tuple(gpus)


_CARD = re.compile(r"^card(\d+)$")


def parse_rocm_smi(text: str) -> tuple[Gpu, ...]:
    """`rocm-smi --showproductname --showmeminfo vram --showdriverversion --json`: each card's
    series, VRAM and gfx version, and the system's driver version. Key names changed case
    between releases ("Card series", "Card Series"), so they are matched without it."""
    document = load_json(text)
    if not isinstance(document, dict):
        return ()
    system = {k.lower(): v for k, v in (document.get("system") or {}).items()}
    driver = _text(system.get("driver version"))
    cards = sorted(
        (int(m[1]), fields)
        for key, fields in document.items()
        if (m := _CARD.match(key)) and isinstance(fields, dict)
    )
    gpus = []
    for _, fields in cards:
        card = {str(k).lower(): v for k, v in fields.items()}
        name = _text(card.get("card series")) or _text(card.get("device name"))
        gpus.append(
            Gpu(
                "amd",
                name,
                _gib(_number(card.get("vram total memory (b)"))),
                driver=driver,
                arch=_text(card.get("gfx version")),
            )
        )
    return tuple(gpus)


def xpu_smi_devices(text: str) -> tuple[tuple[int, Gpu], ...]:
    """`xpu-smi discovery -j` (the device list: names only) or `xpu-smi discovery -d N -j`
    (one device, with its memory and driver version): each GPU with its device id (-1 where
    none is given)."""
    document = load_json(text)
    if not isinstance(document, dict):
        return ()
    records = document.get("device_list", [document] if "device_name" in document else [])
    if not isinstance(records, list):
        return ()
    devices: list[tuple[int, Gpu]] = []
    for record in records:
        if not isinstance(record, dict) or not _text(record.get("device_name")):
            continue
        if _text(record.get("device_type") or "GPU").upper() != "GPU":
            continue
        device_id = record.get("device_id")
        gpu = Gpu(
            "intel",
            _text(record.get("device_name")),
            _gib(_number(record.get("memory_physical_size_byte"))),
            driver=_text(record.get("driver_version")),
        )
        if not isinstance(device_id, int) or isinstance(device_id, bool):
            device_id = -1
        devices.append((device_id, gpu))
    return tuple(devices)


def parse_xpu_smi_discovery(text: str) -> tuple[Gpu, ...]:
    """The GPUs of `xpu-smi discovery -j` or `xpu-smi discovery -d N -j`."""
    return tuple(gpu for _, gpu in xpu_smi_devices(text))


# "[level_zero:gpu][level_zero:0] Platform, Device 12.55.8 [1.3.29735+27]" (oneAPI 2024+) or
# "[ext_oneapi_level_zero:gpu:0] Platform, Device 1.3 [1.3.28044]" (before); OpenCL devices end
# "Device OpenCL 3.0 NEO  [24.39.31294]".
_SYCL_LINE = re.compile(
    r"^\[(?P<backend>\w+):(?P<type>\w+)(?::\d+)?\](?:\[\w+:\d+\])?\s*"
    r"[^,]*,\s*(?P<rest>.+?)\s*\[(?P<driver>[^\]]*)\]\s*$"
)
_SYCL_OPENCL_DEVICE = re.compile(r"^(?P<device>.+?)\s+OpenCL\s+[\d.]+(?:\s+\S+)?$")
_SYCL_DEVICE = re.compile(r"^(?P<device>.+?)\s+(?P<version>\d+(?:\.\d+)+)$")


def parse_sycl_ls(text: str) -> tuple[Gpu, ...]:
    """`sycl-ls`: the Intel GPUs it lists through Level Zero, else through OpenCL (each GPU is
    listed once per backend). oneAPI 2024+ prints a Level Zero device's graphics IP version
    ("12.55.8", kept as `arch`); older releases print the Level Zero API version ("1.3")."""
    by_backend: dict[str, list[Gpu]] = {"level_zero": [], "opencl": []}
    for line in text.splitlines():
        found = _SYCL_LINE.match(line.strip())
        if not found or found["type"] != "gpu":
            continue
        backend = found["backend"].removeprefix("ext_oneapi_")
        device = _SYCL_OPENCL_DEVICE.match(found["rest"]) or _SYCL_DEVICE.match(found["rest"])
        if backend not in by_backend or not device or "intel" not in device["device"].lower():
            continue
        version = device.groupdict().get("version") or ""
        arch = version if backend == "level_zero" and version.count(".") == 2 else ""
        by_backend[backend].append(
            Gpu("intel", device["device"], driver=found["driver"].strip(), arch=arch)
        )
    return tuple(by_backend["level_zero"] or by_backend["opencl"])


def _metal_family(value: str) -> str:
    """ "spdisplays_metal3" (macOS 13+) is "metal3", "spdisplays_mtlgpufamilyapple7" (macOS
    11) "apple7"; a bare "spdisplays_supported" names no family."""
    family = value.removeprefix("spdisplays_").removeprefix("mtlgpufamily")
    return "" if family in ("", "supported") else family


def parse_system_profiler_displays(text: str, memory_gb: float = 0.0) -> tuple[Gpu, ...]:
    """`system_profiler SPDisplaysDataType -json`: Apple silicon's GPU with its core count and
    Metal family, sharing the machine's `memory_gb` (hw.memsize). Intel Macs' AMD, NVIDIA and
    Intel GPUs are listed too, with their own VRAM where the tool says it."""
    entries = _field(load_json(text), "SPDisplaysDataType")
    if not isinstance(entries, list):
        return ()
    gpus = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        # "_name" can be an untranslated key ("kHW_AppleM1Item"); the model is the name.
        name = _text(entry.get("sppci_model")) or _text(entry.get("_name"))
        if not name:
            continue
        vendor_key = _text(entry.get("spdisplays_vendor")).lower()
        apple = "apple" in vendor_key or name.startswith("Apple ")
        vendor = "apple" if apple else _mac_vendor(vendor_key + " " + name.lower())
        family = _text(
            entry.get("spdisplays_mtlgpufamilysupport") or entry.get("spdisplays_metalfamily")
        )
        vram = _mac_vram(entry)
        gpus.append(
            Gpu(
                vendor,
                name,
                memory_gb if apple else vram,
                arch=_metal_family(family),
                cores=int(_number(entry.get("sppci_cores"))),
                unified_memory=apple,
            )
        )
    return tuple(gpus)


def _mac_vendor(text: str) -> str:
    for vendor, words in (
        ("amd", ("amd", "ati", "radeon")),
        ("nvidia", ("nvidia", "geforce")),
        ("intel", ("intel",)),
    ):
        if any(word in text for word in words):
            return vendor
    return text.split()[0] if text.split() else ""


def _mac_vram(entry: dict[str, Any]) -> float:
    """ "8 GB", "1536 MB" under spdisplays_vram (or _spdisplays_vram on older releases)."""
    for key in ("spdisplays_vram", "_spdisplays_vram", "spdisplays_vram_shared"):
        found = re.match(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?B)\s*$", _text(entry.get(key)))
        if found:
            return _gib(float(found[1]) * _SIZE_UNITS[found[2].upper()])
    return 0.0
