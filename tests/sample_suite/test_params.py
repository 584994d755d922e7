"""Parametrized tests whose ids need care: spaces, brackets, dashes and non-ASCII."""

from __future__ import annotations

import pytest


@pytest.mark.parametrize("text", ["a b", "x-1", "ü ñ", "[br]"])
def test_text_ids(text: str) -> None:
    assert text


@pytest.mark.parametrize(("left", "right"), [(1, 2), (2, 2), (3, 2)])
def test_pairs(left: int, right: int) -> None:
    assert left <= right


@pytest.mark.parametrize("value", [1, 2], ids=["one::colons", "two/slash"])
def test_explicit_ids(value: int) -> None:
    assert value in (1, 2)


@pytest.mark.parametrize("value", [pytest.param(0, marks=pytest.mark.xfail(reason="zero")), 5])
def test_param_marks(value: int) -> None:
    assert value
