"""The change-point detectors by name, for the commands and benches that let users pick one.

- `steps` (the default): `steps.detect_steps`, made for benchmark histories: flat levels,
  multiplicative noise of a few percent, rare outliers, steps of a few percent.
- `segments`: `changepoint.detect`, flat or straight-line segments under Normal noise, the
  configuration scored on the TCPD benchmark (`bench/tcpd.py`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from projections.analytics.changepoint import ChangePoint, detect
from projections.analytics.steps import detect_steps

Detector = Callable[[Sequence[float] | np.ndarray], list[ChangePoint]]

DETECTORS: dict[str, Detector] = {"steps": detect_steps, "segments": detect}
DEFAULT_DETECTOR = "steps"
