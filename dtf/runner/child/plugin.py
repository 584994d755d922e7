"""The pytest plugin dtf loads (`-p dtf_child.plugin`) into every pytest it starts.

It registers the `dtf_requires` marker, so suites run with `--strict-markers` accept it.
Nothing else in dtf imports this module: pytest must be the one to import it (a plugin
imported earlier cannot have its asserts rewritten, and pytest warns about that).
"""

from __future__ import annotations

import pytest

from .requirements import MARKER_HELP


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", MARKER_HELP)
