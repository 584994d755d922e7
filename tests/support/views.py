"""Comparing Views by what they hold."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from dtf.core.state import View

DERIVED_ONLY = {"queue_indexes"}  # an index a strategy asks for is not state


def view_state(view: View) -> dict[str, Any]:
    """Every field of the View that a fold builds, comparable with ==."""
    kept = {f.name: getattr(view, f.name) for f in fields(view) if f.name not in DERIVED_ONLY}
    kept["rejections"] = list(view.rejections)
    return kept
