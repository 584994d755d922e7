"""A fresh event envelope for the services: a new id, the time now, who writes it.

The coordinator's rules take theirs from a `decisions.Stamp` instead, so that they stay
reproducible; everything else that writes an event (client, worker, operator) uses this.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, TypeVar

E = TypeVar("E")


def new_event(cls: Callable[..., E], actor: str, **fields: Any) -> E:
    """An event of `cls` by `actor`, with a fresh id and the current time."""
    return cls(id=uuid.uuid4().hex, at=time.time(), actor=actor, **fields)
