"""Code bundles: the project directory packed into a tar.gz named by its sha256.

`dtf run` packs and uploads once per content; workers fetch a bundle once and keep it
extracted in a cache by hash.  The archive is deterministic (sorted names, zeroed owners, the
gzip header without a timestamp), so an unchanged tree gives the same hash and is not sent
again.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import nats.errors
import nats.js.errors

from dtf.errors import BundleError, ConfigError, StoreError
from dtf.store import EventStore

# Never worth shipping, even without a .gitignore saying so.
ALWAYS_SKIPPED = {
    ".git",
    "__pycache__",
    ".venv",
    "venv",
    ".tox",
    ".nox",
    ".mypy_cache",
    ".pytest_cache",
    ".ruff_cache",
    "node_modules",
    ".eggs",
}


def project_files(root: Path) -> list[str]:
    """Relative paths of the files to ship, honouring .gitignore when root is in a git repo."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=root,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
        # ls-files lists tracked files that were deleted in the work tree, and submodules.
        return sorted(n for n in names if (root / n).is_file() and not _skipped(n))
    except (OSError, subprocess.SubprocessError):
        return sorted(walk(root))


def _skipped(name: str) -> bool:
    return any(part in ALWAYS_SKIPPED for part in PurePosixPath(name).parts)


def walk(root: Path) -> Iterator[str]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in ALWAYS_SKIPPED]
        for name in filenames:
            path = Path(dirpath, name)
            if path.is_file() and not name.endswith((".pyc", ".pyo")):
                yield path.relative_to(root).as_posix()


def pack(root: Path, names: list[str] | None = None) -> tuple[str, bytes]:
    """(sha256 hex, archive bytes) of the files under root (default: `project_files`)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in project_files(root) if names is None else names:
            path = root / name
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0  # content, not touch times, decides the hash
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    return hashlib.sha256(data).hexdigest(), data


def check_members(tar: tarfile.TarFile) -> None:
    """Refuse archives that would write outside the extraction directory."""
    for member in tar.getmembers():
        name = member.name
        if (
            name.startswith("/")
            or PurePosixPath(name).is_absolute()
            or ".." in PurePosixPath(name).parts
        ):
            raise BundleError(f"bundle rejected: unsafe path {name!r}")
        if member.issym() or member.islnk():
            raise BundleError(f"bundle rejected: link {name!r}")
        if not (member.isfile() or member.isdir()):
            raise BundleError(f"bundle rejected: special file {name!r}")


def extract(data: bytes, dest: Path) -> None:
    """Extract into dest atomically: a crash mid-way never leaves a half bundle in the cache."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest.parent))
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            check_members(tar)
            tar.extractall(tmp, filter="data")
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another slot won the race otherwise
                raise
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise BundleError(f"bundle could not be extracted: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def upload(store: EventStore, root: Path) -> str:
    """Pack root and put it in the object store unless it is already there; returns its hash."""
    if not root.is_dir():
        raise ConfigError(f"project directory not found: {root}")
    sha, data = await asyncio.to_thread(pack, root)
    bucket = await store.bundles()
    try:
        await bucket.get_info(sha)
        return sha
    except nats.js.errors.ObjectNotFoundError:
        pass
    except (nats.errors.Error, TimeoutError) as exc:
        raise StoreError(f"bundle store unavailable: {exc}") from None
    try:
        await bucket.put(sha, data)
    except (nats.errors.Error, TimeoutError) as exc:
        raise StoreError(f"could not upload the code bundle ({len(data)} bytes): {exc}") from None
    return sha


class BundleCache:
    """Bundles extracted on this machine, one directory per hash; fetches each once."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, store: EventStore, sha: str) -> Path:
        dest = self.root / sha
        if dest.is_dir():
            return dest
        async with self._locks.setdefault(sha, asyncio.Lock()):
            if dest.is_dir():
                return dest
            bucket = await store.bundles()
            try:
                result = await bucket.get(sha)
            except nats.js.errors.ObjectNotFoundError:
                raise BundleError(f"code bundle {sha[:12]} is not in the object store") from None
            except (nats.errors.Error, TimeoutError) as exc:
                raise StoreError(f"could not fetch bundle {sha[:12]}: {exc}") from None
            data = result.data or b""
            if hashlib.sha256(data).hexdigest() != sha:
                raise BundleError(f"code bundle {sha[:12]} is corrupt (hash mismatch)")
            await asyncio.to_thread(extract, data, dest)
        return dest
