"""The alert tiers, most severe first."""

from __future__ import annotations

from typing import Literal

Tier = Literal["system-critical", "critical", "warning", "info"]

TIERS: tuple[Tier, ...] = ("system-critical", "critical", "warning", "info")
