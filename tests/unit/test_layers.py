"""The layers of the code base, as import-linter contracts (`[tool.importlinter]` in
pyproject.toml): events/ innermost, a pure core, a pytest child that imports only the
standard library and pytest, pure analytics.  A wrong import fails here, not in review."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.paths import ROOT


def test_import_contracts_hold() -> None:
    # The script beside this interpreter first: the venv need not be on PATH.
    beside = Path(sys.executable).with_name("lint-imports")
    lint = str(beside) if beside.exists() else shutil.which("lint-imports")
    assert lint, "import-linter is in the dev extra: pip install -e '.[dev]'"
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
