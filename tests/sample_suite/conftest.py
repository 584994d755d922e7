"""Fixtures for the sample suite, and the `dtf_requires` marker so plain pytest knows it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "dtf_requires(**requirements): what a dtf worker needs")


@pytest.fixture
def numbers() -> list[int]:
    return [1, 2, 3]


@pytest.fixture(scope="module")
def module_resource() -> Iterator[dict[str, int]]:
    resource = {"uses": 0}
    yield resource
    resource.clear()


@pytest.fixture(scope="session")
def session_token() -> str:
    return "token-42"


@pytest.fixture
def broken_setup() -> None:
    raise RuntimeError("fixture setup exploded")


@pytest.fixture
def broken_teardown() -> Iterator[None]:
    yield
    raise RuntimeError("fixture teardown exploded")
