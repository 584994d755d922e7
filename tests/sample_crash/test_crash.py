"""A test that kills its own process, between two ordinary tests."""

from __future__ import annotations

import os


def test_before_crash() -> None:
    assert True


def test_exits_process() -> None:
    os._exit(3)


def test_after_crash() -> None:
    assert True
