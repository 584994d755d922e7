"""Code bundles: the project directory packed into a tar.gz named by its sha256.

`dtf run` packs and uploads once per content; workers fetch a bundle once and keep it
extracted in a cache by hash.  The archive is deterministic (sorted names, zeroed owners, the
gzip header without a timestamp), so an unchanged tree gives the same hash and is not sent
again.  A bundle is capped in unpacked size and member count (`Limits`): `pack` refuses a
project over them with a ConfigError, and `extract` refuses a bundle over them from its tar
headers before it writes anything.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from dtf.errors import BundleError, ConfigError
from dtf.nats.store import EventStore

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

# Defaults for a real project's source tree (with .gitignore honoured): the Linux kernel,
# among the largest trees anyone tests, is about 80,000 files and 1.4 GB unpacked; a typical
# project is thousands of files and megabytes.  2 GiB leaves room for checked-in fixtures and small
# models, and is about what the client can still pack in memory (the archive is built
# there whole) and every worker keep per commit in its cache; beyond that it is datasets or
# build output that .gitignore should have left out.
MAX_BYTES = 2 << 30
MAX_MEMBERS = 100_000
BYTES_VAR = "DTF_BUNDLE_MAX_BYTES"
MEMBERS_VAR = "DTF_BUNDLE_MAX_MEMBERS"
# tarfile reads member data in 16 KiB chunks and each header whole: a read longer than this
# is an extended header (a path, a pax record) no real project has, and its memory is the
# attacker's choice.
MAX_READ = 1 << 20
# Headers and padding a member may add to the tar stream beyond its data (a 512-byte header,
# a pax header for a long or non-ASCII path, padding to 512): with the sizes declared, this
# bounds the bytes decompressed while reading the headers, however they are forged.
MEMBER_OVERHEAD = 8 << 10
_SIZE = re.compile(r"\s*(\d+)\s*([KMGT]?)(?:I?B)?\s*", re.IGNORECASE)


@dataclass(frozen=True)
class Limits:
    """The most a bundle may unpack to: total bytes of its files and number of members."""

    max_bytes: int = MAX_BYTES
    max_members: int = MAX_MEMBERS

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Limits:
        """The defaults, overridden by DTF_BUNDLE_MAX_BYTES (bytes, or with a K/M/G/T
        suffix, powers of 1024) and DTF_BUNDLE_MAX_MEMBERS, for `dtf run` and `dtf worker`."""
        max_bytes, max_members = MAX_BYTES, MAX_MEMBERS
        if raw := environ.get(BYTES_VAR, "").strip():
            match = _SIZE.fullmatch(raw)
            if match is None or int(match[1]) <= 0:
                raise ConfigError(f"{BYTES_VAR}={raw!r}: expected a size such as 4G or 500M")
            max_bytes = int(match[1]) << (10 * " KMGT".index(match[2].upper() or " "))
        if raw := environ.get(MEMBERS_VAR, "").strip():
            if not raw.isdigit() or int(raw) <= 0:
                raise ConfigError(f"{MEMBERS_VAR}={raw!r}: expected a positive whole number")
            max_members = int(raw)
        return cls(max_bytes, max_members)


DEFAULT_LIMITS = Limits()
# Checkpoints: the task itself writes them on a worker whose disk it could fill anyway, and a
# model's checkpoint outgrows any size fixed for source trees.
UNLIMITED = Limits(sys.maxsize, sys.maxsize)


def human_size(n: int) -> str:
    """Bytes in binary units, about three digits: '512 B', '205 KiB', '2 GiB', '9.31 GiB'."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        value /= 1024
        if value < 1024 or unit == "TiB":
            break
    return f"{value:.3g} {unit}" if value < 100 else f"{value:.0f} {unit}"


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


def pack(
    root: Path, names: list[str] | None = None, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, bytes]:
    """(sha256 hex, archive bytes) of the files under root (default: `project_files`).

    Raises ConfigError, before reading any file, when they exceed `limits`: every worker
    would refuse the bundle, so the user hears it once, here.
    """
    names = project_files(root) if names is None else names
    _check_project(root, names, limits)
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            path = root / name
            info = tar.gettarinfo(str(path), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mtime = 0  # content, not touch times, decides the hash
            with path.open("rb") as fh:
                tar.addfile(info, fh)
    data = gzip.compress(raw.getvalue(), compresslevel=1, mtime=0)
    return hashlib.sha256(data).hexdigest(), data


def _check_project(root: Path, names: list[str], limits: Limits) -> None:
    hint = "list what the tests do not need in .gitignore"
    if len(names) > limits.max_members:
        raise ConfigError(
            f"the project in {root} has {len(names):,} files to ship, over the limit of "
            f"{limits.max_members:,} ({MEMBERS_VAR}): {hint}"
        )
    sizes = [(os.stat(root / n).st_size, n) for n in names]
    total = sum(size for size, _ in sizes)
    if total > limits.max_bytes:
        size, largest = max(sizes)
        raise ConfigError(
            f"the project in {root} is {human_size(total)} to ship, over the limit of "
            f"{human_size(limits.max_bytes)} ({BYTES_VAR}; largest: {largest}, "
            f"{human_size(size)}): {hint}"
        )


def check_member(member: tarfile.TarInfo) -> None:
    """Refuse a member that would write outside the extraction directory, or not a file."""
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


def scan(tar: tarfile.TarFile, limits: Limits) -> list[tarfile.TarInfo]:
    """The members, each checked, refused as soon as their count or declared sizes pass the
    limits: read header by header (not `getmembers()`), so a forged list of millions stops
    at the limit, and the data skipped to reach the next header is data within it."""
    members: list[tarfile.TarInfo] = []
    total = 0
    for member in tar:
        check_member(member)
        members.append(member)
        total += member.size
        if len(members) > limits.max_members:
            raise BundleError(
                f"bundle rejected: it has more than {limits.max_members:,} members, the limit "
                f"({MEMBERS_VAR} on the worker)"
            )
        if total > limits.max_bytes:
            raise BundleError(
                f"bundle rejected: it unpacks to at least {human_size(total)}, over the limit "
                f"of {human_size(limits.max_bytes)} ({BYTES_VAR} on the worker)"
            )
    return members


class _Capped(io.RawIOBase):
    """The decompressed tar stream, refusing to go past `cap` bytes or to read more than
    MAX_READ at once, checked before the gzip layer does the work: reading the headers can
    neither run through a gzip bomb nor allocate a forged header size."""

    def __init__(self, inner: gzip.GzipFile, cap: int) -> None:
        super().__init__()
        self._inner = inner
        self._cap = cap

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._inner.tell()

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        # Seeking forward in a gzip stream decompresses up to the target: check it first.
        target = offset if whence == io.SEEK_SET else self._inner.tell() + offset
        if whence not in (io.SEEK_SET, io.SEEK_CUR) or target > self._cap:
            raise self._too_long()
        return self._inner.seek(target)

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0 or size > MAX_READ:
            raise BundleError(f"bundle rejected: a tar header longer than {human_size(MAX_READ)}")
        if self._inner.tell() + size > self._cap:
            raise self._too_long()
        return self._inner.read(size)

    def _too_long(self) -> BundleError:
        return BundleError(
            f"bundle rejected: its tar stream runs past {human_size(self._cap)}, more than "
            f"its members may take ({BYTES_VAR}, {MEMBERS_VAR} on the worker)"
        )


def extract(data: bytes, dest: Path, limits: Limits = DEFAULT_LIMITS) -> None:
    """Extract into dest atomically: a crash mid-way never leaves a half bundle in the cache.

    Every member is checked (paths, types, `limits`) from the headers before anything is
    written; a refusal is one BundleError line.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".partial-", dir=dest.parent))
    cap = limits.max_bytes + (limits.max_members + 1) * MEMBER_OVERHEAD + tarfile.RECORDSIZE
    try:
        with (
            gzip.GzipFile(fileobj=io.BytesIO(data), mode="rb") as unzipped,
            tarfile.open(fileobj=_Capped(unzipped, cap), mode="r:") as tar,
        ):
            members = scan(tar, limits)
            tar.extractall(tmp, members=members, filter="data")
        try:
            tmp.rename(dest)
        except OSError:
            if not dest.is_dir():  # another slot won the race otherwise
                raise
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise BundleError(f"bundle could not be extracted: {exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


async def upload(store: EventStore, root: Path) -> str:
    """Pack root and put it in the object store unless it is already there; returns its hash."""
    if not root.is_dir():
        raise ConfigError(f"project directory not found: {root}")
    limits = Limits.from_env()
    sha, data = await asyncio.to_thread(pack, root, None, limits)
    bucket = store.bundles()
    if not await bucket.exists(sha):
        await bucket.put(sha, data)
    return sha


class BundleCache:
    """Bundles extracted on this machine, one directory per hash; fetches each once.  Owns
    the limits it extracts with (from the environment when not given: read at start, so a
    bad value stops the worker instead of failing every task)."""

    def __init__(self, root: Path, limits: Limits | None = None) -> None:
        self.root = root
        self.limits = limits if limits is not None else Limits.from_env()
        self._locks: dict[str, asyncio.Lock] = {}

    async def get(self, store: EventStore, sha: str) -> Path:
        dest = self.root / sha
        if dest.is_dir():
            return dest
        async with self._locks.setdefault(sha, asyncio.Lock()):
            if dest.is_dir():
                return dest
            data = await store.bundles().get(sha)
            if data is None:
                raise BundleError(f"code bundle {sha[:12]} is not in the object store")
            if hashlib.sha256(data).hexdigest() != sha:
                raise BundleError(f"code bundle {sha[:12]} is corrupt (hash mismatch)")
            await asyncio.to_thread(extract, data, dest, self.limits)
        return dest
