"""Coverage measurement inside a session-mode child (`dtf run --cov`).

The parent names the data file and the sources in `DTF_COVERAGE` (JSON: `{"data_file": F,
"source": [...]}`, an empty list for coverage.py's default). Measurement starts before pytest
does, so the imports at collection count, as under `pytest --cov`; the project's own coverage
configuration (`.coveragerc`, `[tool.coverage]`) applies, read from the child's directory. The
data is saved after every batch, cumulatively: the parent ships the file after each task, and
a crash later loses nothing saved before. A replacement child (after a crash) loads the file
and goes on adding to it.

Runs in the project's interpreter: coverage must be installed there.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

COVERAGE_ENV = "DTF_COVERAGE"


class Measurement:
    """A started coverage.py measurement, saved on request."""

    def __init__(self, spec: dict[str, Any]) -> None:
        try:
            import coverage
        except ImportError:
            sys.stderr.write(
                f"dtf: --cov needs coverage.py in the tests' interpreter ({sys.executable}): "
                "pip install coverage\n"
            )
            raise SystemExit(4) from None
        sources = [s for s in spec.get("source", []) if s]
        self._cov = coverage.Coverage(data_file=spec["data_file"], source=sources or None)
        # dtf's own child code is not the project's, whatever `source` says.
        omit = self._cov.get_option("run:omit")
        omitted = list(omit) if isinstance(omit, list | tuple) else []
        self._cov.set_option("run:omit", [*omitted, str(Path(__file__).parent / "*")])
        self._cov.load()  # what an earlier child of this session measured
        self._cov.start()

    def save(self) -> None:
        self._cov.save()


def from_environment() -> Measurement | None:
    """The measurement `DTF_COVERAGE` asks for, started; None when it asks for none."""
    raw = os.environ.pop(COVERAGE_ENV, "")
    return Measurement(json.loads(raw)) if raw else None
