"""Tests that use function, module and session scoped fixtures from conftest.py."""

from __future__ import annotations


def test_function_fixture(numbers: list[int]) -> None:
    numbers.append(4)
    assert numbers == [1, 2, 3, 4]


def test_function_fixture_is_fresh(numbers: list[int]) -> None:
    assert numbers == [1, 2, 3]


def test_module_fixture(module_resource: dict[str, int]) -> None:
    module_resource["uses"] += 1
    assert module_resource["uses"] >= 1


def test_module_fixture_again(module_resource: dict[str, int]) -> None:
    module_resource["uses"] += 1
    assert module_resource["uses"] >= 1


def test_session_fixture(session_token: str) -> None:
    assert session_token == "token-42"


def test_all_scopes(
    numbers: list[int], module_resource: dict[str, int], session_token: str
) -> None:
    assert numbers and "uses" in module_resource and session_token
