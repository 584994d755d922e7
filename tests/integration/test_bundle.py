"""Code bundles: deterministic packing that honours .gitignore, safe extraction, the cache."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from dtf.bundle import BundleCache, Limits, extract, pack, project_files, upload
from dtf.errors import BundleError, ConfigError, WorkerError
from dtf.nats.server import LocalServer
from dtf.nats.store import EventStore


def make_project(root: Path) -> Path:
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("X = 1\n")
    (root / "test_a.py").write_text("def test_a():\n    pass\n")
    (root / "build.log").write_text("noise\n")
    (root / "__pycache__").mkdir()
    (root / "__pycache__" / "x.pyc").write_bytes(b"\0")
    return root


def test_pack_is_deterministic_and_skips_caches(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    sha1, data1 = pack(root)
    (root / "test_a.py").touch()  # a new mtime alone does not change the bundle
    sha2, _ = pack(root)
    assert sha1 == sha2
    with tarfile.open(fileobj=io.BytesIO(data1)) as tar:
        names = tar.getnames()
    assert "pkg/mod.py" in names and not any("__pycache__" in n for n in names)
    (root / "test_a.py").write_text("def test_a():\n    assert 1\n")
    assert pack(root)[0] != sha1


def test_gitignore_is_honoured(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    subprocess.run(["git", "init", "-q"], cwd=root, check=True)
    (root / ".gitignore").write_text("*.log\n")
    files = project_files(root)
    assert "build.log" not in files and "test_a.py" in files and ".gitignore" in files


def tar_with(member: tarfile.TarInfo, payload: bytes = b"x") -> bytes:
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        member.size = len(payload) if member.isfile() else 0
        tar.addfile(member, io.BytesIO(payload) if member.isfile() else None)
    return gzip.compress(raw.getvalue())


@pytest.mark.parametrize("name", ["/etc/evil", "../evil", "a/../../evil"])
def test_unsafe_paths_are_rejected(tmp_path: Path, name: str) -> None:
    with pytest.raises(WorkerError, match="unsafe path"):
        extract(tar_with(tarfile.TarInfo(name)), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_links_are_rejected(tmp_path: Path) -> None:
    link = tarfile.TarInfo("link")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    with pytest.raises(WorkerError, match="link"):
        extract(tar_with(link), tmp_path / "out")


async def test_upload_once_fetch_once(store: EventStore, tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    sha = await upload(store, root)
    assert await upload(store, root) == sha  # already there: not sent again
    cache = BundleCache(tmp_path / "cache")
    path = await cache.get(store, sha)
    assert (path / "pkg" / "mod.py").read_text() == "X = 1\n"
    assert await cache.get(store, sha) == path
    with pytest.raises(WorkerError, match="not in the object store"):
        await cache.get(store, "0" * 64)


# --- limits on what a bundle unpacks to (issue #16 B) ----------------------------------


def tar_of(*members: tuple[str, int], forged: bool = False) -> bytes:
    """A tar.gz of files of zeros, (name, size) each.  When `forged`, the last member's data
    is left out, so its header may declare any size without the test writing it."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for n, (name, size) in enumerate(members, start=1):
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, None if forged and n == len(members) else io.BytesIO(bytes(size)))
    return gzip.compress(raw.getvalue())


def one_line(exc: pytest.ExceptionInfo[BaseException]) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


def test_a_gzip_bomb_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    bomb = tar_of(("ok.py", 10), ("zeros.bin", 8 << 20))  # 8 MiB of zeros, ~8 KiB packed
    assert len(bomb) < 64 << 10
    with pytest.raises(BundleError) as exc:
        extract(bomb, tmp_path / "cache" / "sha", Limits(max_bytes=1 << 20))
    assert one_line(exc) == (
        "bundle rejected: it unpacks to at least 8 MiB, over the limit of 1 MiB"
        " (DTF_BUNDLE_MAX_BYTES on the worker)"
    )
    assert list((tmp_path / "cache").iterdir()) == []  # no bundle, no partial directory


def test_a_forged_size_is_refused_from_its_header_with_the_default_limits(tmp_path: Path) -> None:
    """A header may declare terabytes; the refusal reads no further than that header."""
    forged = tar_of(("small.py", 3), ("huge.bin", 5 << 40), forged=True)
    with pytest.raises(BundleError) as exc:
        extract(forged, tmp_path / "out")
    assert "at least 5 TiB, over the limit of 2 GiB" in one_line(exc)
    assert not (tmp_path / "out").exists()


def test_too_many_members_are_refused(tmp_path: Path) -> None:
    many = tar_of(*((f"f{i}.py", 0) for i in range(50)))
    with pytest.raises(BundleError) as exc:
        extract(many, tmp_path / "out", Limits(max_members=20))
    assert one_line(exc) == (
        "bundle rejected: it has more than 20 members, the limit"
        " (DTF_BUNDLE_MAX_MEMBERS on the worker)"
    )
    extract(many, tmp_path / "out", Limits(max_members=50))  # exactly the limit is fine
    assert len(list((tmp_path / "out").iterdir())) == 50


def pax_bomb(header_bytes: int) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("a.py")
        info.pax_headers = {"comment": "x" * header_bytes}
        tar.addfile(info, io.BytesIO(b""))
    return gzip.compress(raw.getvalue())


def test_forged_headers_cannot_make_the_check_allocate_or_read_without_bound(
    tmp_path: Path,
) -> None:
    """tarfile reads an extended (pax) header whole and before the member it describes: one
    of 2 MiB is refused unread, and headers beyond what the limits allow stop the reading."""
    with pytest.raises(BundleError) as exc:
        extract(pax_bomb(2 << 20), tmp_path / "out")
    assert one_line(exc) == "bundle rejected: a tar header longer than 1 MiB"
    with pytest.raises(BundleError) as exc:
        extract(pax_bomb(100 << 10), tmp_path / "out", Limits(max_bytes=1, max_members=1))
    assert one_line(exc).startswith("bundle rejected: its tar stream runs past 26 KiB")
    assert not (tmp_path / "out").exists()


def test_limits_from_the_environment() -> None:
    assert Limits.from_env({}) == Limits(2 << 30, 100_000)
    env = {"DTF_BUNDLE_MAX_BYTES": "4G", "DTF_BUNDLE_MAX_MEMBERS": "250000"}
    assert Limits.from_env(env) == Limits(4 << 30, 250_000)
    assert Limits.from_env({"DTF_BUNDLE_MAX_BYTES": "512 MiB"}).max_bytes == 512 << 20
    assert Limits.from_env({"DTF_BUNDLE_MAX_BYTES": "1000"}).max_bytes == 1000
    with pytest.raises(ConfigError, match="DTF_BUNDLE_MAX_BYTES='lots'"):
        Limits.from_env({"DTF_BUNDLE_MAX_BYTES": "lots"})
    with pytest.raises(ConfigError, match="DTF_BUNDLE_MAX_MEMBERS='0'"):
        Limits.from_env({"DTF_BUNDLE_MAX_MEMBERS": "0"})


async def test_a_worker_cache_refuses_a_bomb_under_its_environment_limit(
    store: EventStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bomb = tar_of(("zeros.bin", 4 << 20))
    sha = hashlib.sha256(bomb).hexdigest()
    await store.bundles().put(sha, bomb)
    monkeypatch.setenv("DTF_BUNDLE_MAX_BYTES", "1M")
    cache = BundleCache(tmp_path / "cache")
    with pytest.raises(BundleError, match="at least 4 MiB, over the limit of 1 MiB"):
        await cache.get(store, sha)
    assert list((tmp_path / "cache").iterdir()) == []


def test_pack_refuses_a_project_over_the_limits(tmp_path: Path) -> None:
    root = make_project(tmp_path / "p")
    (root / "data.bin").write_bytes(bytes(3000))
    with pytest.raises(ConfigError) as exc:
        pack(root, limits=Limits(max_members=2))
    assert one_line(exc) == (
        f"the project in {root} has 4 files to ship, over the limit of 2"
        " (DTF_BUNDLE_MAX_MEMBERS): list what the tests do not need in .gitignore"
    )
    with pytest.raises(ConfigError) as exc:
        pack(root, limits=Limits(max_bytes=2048))
    assert one_line(exc) == (
        f"the project in {root} is 2.96 KiB to ship, over the limit of 2 KiB"
        " (DTF_BUNDLE_MAX_BYTES; largest: data.bin, 2.93 KiB): list what the tests do not"
        " need in .gitignore"
    )


def test_dtf_run_refuses_a_project_over_the_limits(
    nats_server: LocalServer, tmp_path: Path
) -> None:
    """Through the real CLI: one line and exit 2."""
    root = make_project(tmp_path / "p")
    proc = subprocess.run(
        [sys.executable, "-m", "dtf", "run", "--server", nats_server.url, "--command", "true"],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "DTF_BUNDLE_MAX_MEMBERS": "2"},
    )
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        f"dtf: error: the project in {root} has 3 files to ship, over the limit of 2"
        " (DTF_BUNDLE_MAX_MEMBERS): list what the tests do not need in .gitignore"
    ]
