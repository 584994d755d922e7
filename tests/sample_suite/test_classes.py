"""Class-based tests, a nested class, and class-scoped fixtures."""

from __future__ import annotations

import pytest


class TestArithmetic:
    def test_add(self) -> None:
        assert 2 + 2 == 4

    def test_sub_fails(self) -> None:
        assert 2 - 2 == 1

    @pytest.mark.parametrize("n", [1, 2])
    def test_positive(self, n: int) -> None:
        assert n > 0


class TestOuter:
    def test_outer(self) -> None:
        assert True

    class TestInner:
        def test_inner(self) -> None:
            assert True

        def test_inner_skip(self) -> None:
            pytest.skip("inner skip")


@pytest.fixture(scope="class")
def shared_list() -> list[str]:
    return []


class TestClassFixture:
    def test_first(self, shared_list: list[str]) -> None:
        shared_list.append("first")
        assert shared_list[-1] == "first"

    def test_second(self, shared_list: list[str]) -> None:
        shared_list.append("second")
        assert "second" in shared_list
