"""Waiting for a condition with a deadline, never a fixed sleep."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator


def _attempts(check: Callable[[], object], timeout: float) -> Iterator[object]:
    """`check`'s values until one is truthy (the last one yielded); an AssertionError with
    the last value once `timeout` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        yield value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last: {value!r})")


def eventually(check: Callable[[], object], timeout: float = 15.0, interval: float = 0.02):
    """Poll `check` until it returns something truthy; fail with its last value at the deadline."""
    for value in _attempts(check, timeout):
        if value:
            return value
        time.sleep(interval)


async def eventually_async(
    check: Callable[[], object], timeout: float = 15.0, interval: float = 0.02
):
    """`eventually` for a test that runs on the event loop: the loop goes on while it waits."""
    for value in _attempts(check, timeout):
        if value:
            return value
        await asyncio.sleep(interval)
