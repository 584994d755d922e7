"""Key files as a thief would keep them: a private copy made before a revocation."""

from __future__ import annotations

from pathlib import Path


def stolen_copy(key: Path, to: Path) -> Path:
    """A mode-0600 copy of the key file `key` at `to` (which dtf accepts as a key file)."""
    to.write_bytes(key.read_bytes())
    to.chmod(0o600)
    return to
