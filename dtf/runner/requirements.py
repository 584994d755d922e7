"""Reading what a test needs from a worker out of its `dtf_requires` marker."""

from __future__ import annotations

import msgspec
import pytest

from dtf.runner.wire import WireRequirements

MARKER = "dtf_requires"
MARKER_HELP = (
    f"{MARKER}(gpus=0, memory_gb=0, labels=[], platform='', cpus=0, gpu_vendor='', "
    "gpu_memory_gb=0): what a dtf worker must offer to run this test"
)


class MarkerError(ValueError):
    """A `dtf_requires` marker with bad arguments."""


def requirements_of(item: pytest.Item) -> WireRequirements:
    """The requirements of the item's closest `dtf_requires` marker; none when unmarked."""
    marker = item.get_closest_marker(MARKER)
    if marker is None:
        return WireRequirements()
    if marker.args:
        raise MarkerError(f"{MARKER} takes keyword arguments only, got {marker.args!r}")
    try:
        return msgspec.convert(marker.kwargs, WireRequirements)
    except msgspec.ValidationError as exc:
        raise MarkerError(f"bad {MARKER} marker: {exc}") from None
