"""Code bundles: deterministic packing that honours .gitignore, safe extraction, the cache."""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from dtf.bundle import BundleCache, extract, pack, project_files, upload
from dtf.errors import WorkerError
from dtf.store import EventStore


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
