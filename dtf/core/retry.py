"""Retry policy: exponential backoff with full jitter, and what a failure says about resources.

Pure: the random draw comes in as an argument, so the coordinator's decisions are
reproducible in tests.
"""

from __future__ import annotations

import re

BASE_S = 0.5
CAP_S = 30.0
QUARANTINE_AFTER = 3  # consecutive infrastructure failures a worker reports itself
# Words that mean the machine ran out of something, not that the test is wrong; whole words
# only, since a message also names the worker ("worker doomed-3 lost" is not an OOM kill).
_EXHAUSTION = re.compile(
    r"\b(?:sigkill|out of memory|oom(?:[-_ ]?kill(?:ed|er)?)?|no space left|memoryerror"
    r"|disk full)\b",
    re.IGNORECASE,
)


def backoff(attempt: int, draw: float, base: float = BASE_S, cap: float = CAP_S) -> float:
    """Seconds to wait before attempt `attempt + 1`: uniform in [0, min(cap, base * 2^(n-1))).

    Full jitter (AWS architecture blog, "Exponential Backoff And Jitter") spreads retries of
    many tasks that failed together, e.g. when one machine died.
    """
    return draw * min(cap, base * 2 ** max(0, attempt - 1))


def resource_exhaustion(message: str) -> bool:
    """Whether a failure's message says the machine ran out of memory or disk."""
    return _EXHAUSTION.search(message) is not None
