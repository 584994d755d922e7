"""Tests marked with what a dtf worker must offer to run them."""

from __future__ import annotations

import pytest


@pytest.mark.dtf_requires(
    gpus=1,
    memory_gb=8,
    labels=["fast"],
    platform="linux",
    cpus=4,
    gpu_vendor="nvidia",
    gpu_memory_gb=16,
)
def test_needs_gpu() -> None:
    assert True


@pytest.mark.dtf_requires(labels=["db"])
class TestNeedsDatabase:
    def test_class_marker(self) -> None:
        assert True

    @pytest.mark.dtf_requires(memory_gb=2)
    def test_closest_marker_wins(self) -> None:
        assert True


def test_no_requirements() -> None:
    assert True
