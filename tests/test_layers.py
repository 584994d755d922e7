"""The layers of the code base, as import-linter contracts (`[tool.importlinter]` in
pyproject.toml): events/ innermost, a pure core, a pytest child that imports only the
standard library and pytest, pure analytics.  A wrong import fails here, not in review."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports")
    assert lint, "import-linter is in the dev extra: pip install -e '.[dev]'"
    done = subprocess.run(
        [lint, "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "0 broken" in done.stdout
