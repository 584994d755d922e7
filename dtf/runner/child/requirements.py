"""Reading what a test needs from a worker out of its `dtf_requires` marker."""

from __future__ import annotations

import math
from typing import Any

import pytest

MARKER = "dtf_requires"
MARKER_HELP = (
    f"{MARKER}(gpus=0, memory_gb=0, labels=[], platform='', cpus=0, gpu_vendor='', "
    "gpu_arch='', gpu_memory_gb=0, compute_capability=0, cpu_flags=[]): what a dtf worker "
    "must offer to run this test"
)
_COUNTS = ("cpus", "gpus")
_AMOUNTS = ("memory_gb", "gpu_memory_gb", "compute_capability")
_LISTS = ("labels", "cpu_flags")
_TEXTS = ("platform", "gpu_vendor", "gpu_arch")


class MarkerError(ValueError):
    """A `dtf_requires` marker with bad arguments."""


def requirements_of(item: pytest.Item) -> dict[str, Any]:
    """The checked requirements of the item's closest `dtf_requires` marker; {} when unmarked."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return {}
    if marker.args:
        raise MarkerError(f"{MARKER} takes keyword arguments only, got {marker.args!r}")
    return check_requirements(dict(marker.kwargs))


def check_requirements(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The marker's arguments, refused with a MarkerError naming the first bad one.

    They become a TaskQueued event: a negative count is a task no worker can ever take, and
    NaN or infinity cannot be written in an event at all.
    """
    checked: dict[str, Any] = {}
    for key, value in kwargs.items():
        if key in _COUNTS:
            good = isinstance(value, int) and not isinstance(value, bool) and value >= 0
            expected = "a whole number >= 0"
        elif key in _AMOUNTS:
            good = (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
                and value >= 0
            )
            expected = "a finite number >= 0"
            value = float(value) if good else value
        elif key in _TEXTS:
            good, expected = isinstance(value, str), "text"
        elif key in _LISTS:
            good = isinstance(value, list | tuple) and all(isinstance(v, str) for v in value)
            expected = "a list of text"
            value = list(value) if good else value
            if good and key == "cpu_flags":  # /proc/cpuinfo's names are lower case
                value = [flag.lower() for flag in value]
        else:
            known = ", ".join((*_COUNTS, *_AMOUNTS, *_TEXTS, *_LISTS))
            raise MarkerError(f"bad {MARKER} marker: unknown argument {key!r} (known: {known})")
        if not good:
            raise MarkerError(f"bad {MARKER} marker: {key} must be {expected}, got {value!r}")
        checked[key] = value
    return checked
