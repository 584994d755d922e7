"""A module skipped as a whole while being imported: plain pytest counts it as one skip."""

from __future__ import annotations

import pytest

pytest.skip("this module is skipped at import", allow_module_level=True)


def test_never_collected() -> None:
    raise AssertionError("never runs")
