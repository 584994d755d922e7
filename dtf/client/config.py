"""Where settings come from: command line, then environment, then `[tool.dtf]` in pyproject.toml.

Unknown keys, wrong types and bad values in `[tool.dtf]` are errors (one line naming the key
and the file), since a misspelt setting that is silently ignored costs a user far more than a
refusal.  Values are checked by the same rules as the flags of `dtf run` (`dtf.client.options`).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

import msgspec

from dtf.client.options import check_option, setting_source
from dtf.core import quarantine
from dtf.errors import ConfigError
from dtf.worker.interpreter import resolve


class Settings(msgspec.Struct, forbid_unknown_fields=True, rename="kebab"):
    """`[tool.dtf]` keys (kebab-case) and their defaults."""

    server: str = ""
    workers: int | None = None  # None: one per CPU
    split: str = "file"
    timeout: float = 600.0
    strategy: str = "duration"
    labels: list[str] = []
    python: str = ""  # the project's interpreter (default: dtf's own)
    creds: str = ""  # the key file this machine connects with (`dtf auth`)
    tls_ca: str = ""  # the CA certificate that signed the servers' (tls:// URLs)
    # Tests that run but cannot fail the build (`dtf.core.quarantine`), listed here or in a
    # file of one pattern a line.
    quarantine: list[str] = []
    quarantine_file: str = ""


def find_pyproject(start: Path) -> Path | None:
    for directory in (start, *start.parents):
        candidate = directory / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def load_settings(start: Path) -> Settings:
    path = find_pyproject(start.resolve())
    if path is None:
        return Settings()
    try:
        tool: Any = tomllib.loads(path.read_text()).get("tool", {})
    except (tomllib.TOMLDecodeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    table = tool.get("dtf", {}) if isinstance(tool, dict) else {}
    try:
        settings = msgspec.convert(table, Settings)
    except msgspec.ValidationError as exc:
        raise ConfigError(f"bad [tool.dtf] in {path}: {exc}") from None
    for f in msgspec.structs.fields(Settings):
        check_option(f.name, getattr(settings, f.name), setting_source(f.encode_name, path))
    for key in (
        "creds",
        "tls_ca",
        "quarantine_file",
    ):  # relative to the pyproject.toml that names them
        if getattr(settings, key):
            where = str(path.parent / getattr(settings, key))
            settings = msgspec.structs.replace(settings, **{key: where})
    if settings.python:
        # A relative path means the same interpreter from anywhere inside the project.
        settings = msgspec.structs.replace(settings, python=resolve(settings.python, path.parent))
    return settings


def server_url(cli: str | None, settings: Settings) -> str | None:
    """The NATS URL(s) to use, or None for the embedded server."""
    url = cli or os.environ.get("DTF_SERVER") or settings.server or None
    if url is not None:
        for part in url.split(","):
            if not part.strip().startswith(("nats://", "tls://", "ws://", "wss://")):
                raise ConfigError(f"server URL must look like nats://host:4222, got {part!r}")
    return url


def creds_path(cli: str | None, settings: Settings) -> Path | None:
    """The key file to connect with (`--creds`, $DTF_CREDS, `[tool.dtf] creds`), or None for
    a server without authorization."""
    path = cli or os.environ.get("DTF_CREDS") or settings.creds or None
    return Path(path).expanduser() if path else None


def tls_ca_path(cli: str | None, settings: Settings) -> Path | None:
    """The CA certificate to verify tls:// servers with, or None for the system's."""
    path = cli or os.environ.get("DTF_TLS_CA") or settings.tls_ca or None
    return Path(path).expanduser() if path else None


def quarantine_patterns(settings: Settings, cli_file: Path | None = None) -> list[str]:
    """The quarantine: `[tool.dtf] quarantine`, then the patterns of `quarantine-file` and of
    `--quarantine-file`; a file that cannot be read is one ConfigError."""
    patterns = list(settings.quarantine)
    for path in (Path(settings.quarantine_file) if settings.quarantine_file else None, cli_file):
        if path is None:
            continue
        try:
            patterns += quarantine.parse_file(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
            raise ConfigError(f"cannot read the quarantine file {path}: {reason}") from None
    return patterns


def servers(url: str) -> list[str]:
    return [u.strip() for u in url.split(",") if u.strip()]
