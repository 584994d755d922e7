"""A clock that moves only when a test moves it, for whatever takes a `clock` callable."""

from __future__ import annotations


class ManualClock:
    """Seconds as a float, from `now`; `advance` is the only way time passes."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now
