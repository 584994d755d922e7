"""Hostile input, generated (issue #10): bundles a worker unpacks, `[tool.dtf]` tables and
key files.  Whatever comes in, the answer is the one error type the caller reports as one
line (BundleError, ConfigError), nothing is written outside the target directory, and
nothing else is raised.  The event decoder has its own properties in test_codec.py."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from dtf.bundle import Limits, extract
from dtf.client.config import load_settings
from dtf.errors import BundleError, ConfigError
from dtf.nats.auth import read_seed

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
SMALL = Limits(max_bytes=1 << 20, max_members=50)

_names = st.one_of(
    st.sampled_from(
        ["/etc/passwd", "../up", "a/../../up", "./ok", "ok/../../../x", "dev/null", "a" * 300]
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=40),
)
_types = st.sampled_from(
    [
        tarfile.REGTYPE,
        tarfile.DIRTYPE,
        tarfile.SYMTYPE,
        tarfile.LNKTYPE,
        tarfile.CHRTYPE,
        tarfile.BLKTYPE,
        tarfile.FIFOTYPE,
        tarfile.CONTTYPE,
        tarfile.GNUTYPE_SPARSE,
    ]
)
_member = st.tuples(
    _names, _types, st.sampled_from(["", "/etc/passwd", "../../x", "a"]), st.binary(max_size=64)
)


def _bundle(members: list[tuple[str, bytes, str, bytes]], forged_size: int | None) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, kind, link, payload in members:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.linkname = link
            info.size = len(payload) if kind == tarfile.REGTYPE else 0
            try:
                tar.addfile(info, io.BytesIO(payload) if kind == tarfile.REGTYPE else None)
            except (ValueError, OSError, tarfile.TarError):
                continue  # tarfile itself refused to write it: not an input we can make
    data = raw.getvalue()
    if forged_size is not None and len(data) >= 512:
        # Overwrite the first header's size field (octal, 12 bytes at offset 124).
        field = f"{forged_size:011o}".encode()[:11] + b"\0"
        data = data[:124] + field + data[136:]
    return gzip.compress(data)


def _outside(root: Path, before: set[Path]) -> set[Path]:
    """Files under root's parent that appeared beside the target (a write that escaped)."""
    return {p for p in root.parent.rglob("*") if p not in before} - set(root.rglob("*")) - {root}


@FUZZ
@given(
    members=st.lists(_member, max_size=6),
    forged=st.one_of(st.none(), st.integers(0, 8**11 - 1)),
)
def test_a_bundle_is_unpacked_safely_or_refused(tmp_path: Path, members, forged) -> None:
    case = tmp_path / os.urandom(6).hex()
    case.mkdir()
    before = set(case.rglob("*"))
    target = case / "out"
    try:
        extract(_bundle(members, forged), target, SMALL)
    except BundleError as exc:
        assert "\n" not in str(exc)
        assert not target.exists()
    else:
        for path in target.rglob("*"):
            assert path.is_file() or path.is_dir()
            assert not path.is_symlink()
            assert path.resolve().is_relative_to(target.resolve())
    assert not _outside(target, before)


@FUZZ
@given(data=st.binary(max_size=2048))
def test_garbage_is_not_a_bundle(tmp_path: Path, data: bytes) -> None:
    target = tmp_path / os.urandom(6).hex()
    for blob in (data, gzip.compress(data)):
        try:
            extract(blob, target, SMALL)
        except BundleError as exc:
            assert "\n" not in str(exc)
        else:
            assert target.is_dir()  # an empty or harmless archive
            shutil.rmtree(target)


_toml_values = st.recursive(
    st.one_of(
        st.integers(-(2**70), 2**70),
        st.floats(allow_nan=True),
        st.text(max_size=20),
        st.booleans(),
    ),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=6,
)
_keys = st.sampled_from(
    [
        "server",
        "workers",
        "split",
        "timeout",
        "strategy",
        "labels",
        "python",
        "creds",
        "tls-ca",
        "bogus",
    ]
)


def _toml(value: object) -> str:
    """TOML text for a value (enough of TOML for these: inline tables and arrays)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, str):
        return '"' + value.encode("unicode_escape").decode().replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    assert isinstance(value, dict)
    items = ", ".join(
        f'"{k.encode("unicode_escape").decode()}" = {_toml(v)}' for k, v in value.items()
    )
    return "{" + items + "}"


@FUZZ
@given(table=st.dictionaries(_keys, _toml_values, max_size=4), raw=st.binary(max_size=200))
def test_a_tool_dtf_table_is_read_or_refused_in_one_line(tmp_path: Path, table, raw) -> None:
    case = tmp_path / os.urandom(6).hex()
    case.mkdir()
    for text in (
        "[tool.dtf]\n" + "".join(f"{k} = {_toml(v)}\n" for k, v in table.items()),
        raw.decode("utf-8", errors="replace"),
    ):
        (case / "pyproject.toml").write_text(text)
        try:
            load_settings(case)
        except ConfigError as exc:
            assert "\n" not in str(exc)


@FUZZ
@given(content=st.binary(max_size=120))
def test_a_key_file_is_a_seed_or_refused(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / f"{os.urandom(6).hex()}.nk"
    path.write_bytes(content)
    path.chmod(0o600)
    try:
        seed = read_seed(path)
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert seed.startswith(b"SU")


def test_a_device_file_in_a_bundle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="special file"):
        extract(_bundle([("dev/zero", tarfile.CHRTYPE, "", b"")], None), tmp_path / "out")


# --- the command line -----------------------------------------------------------------------

_tokens = st.one_of(
    st.sampled_from(
        ["run", "worker", "status", "show", "audit", "verify", "auth", "add", "revoke", "server",
         "--server", "--creds", "--requires", "--since", "--slots", "--cluster", "--auth", "-n",
         "--split", "all", "task", "worker", "--", "=", "-", "--port", "0", "-1", "x" * 200]
    ),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20),
)  # fmt: skip


@FUZZ
@given(argv=st.lists(_tokens, max_size=8))
@example(argv=["server", "\r0"])  # found by CI: a carriage return in the echoed argument
def test_the_argument_parser_answers_everything_with_a_namespace_or_its_usage_line(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from dtf.cli.args import build_parser

    try:
        build_parser().parse_args(argv)
    except SystemExit as exc:  # argparse's own answer: usage and one error line, status 2
        assert exc.code in (0, 2)
        if exc.code == 2:  # (the offending argument is echoed as it is: no splitting lines)
            err = capsys.readouterr().err
            assert err.startswith("usage: dtf") and ": error: " in err


@FUZZ
@given(spec=st.text(max_size=60))
def test_requirements_and_ages_parse_or_say_why(spec: str) -> None:
    from dtf.cli.analysis import parse_age
    from dtf.core.requirements import parse

    try:
        parse(spec)
    except ValueError as exc:
        assert str(exc)
    try:
        assert parse_age(spec, "--since") >= 0
    except ConfigError as exc:
        assert "--since" in str(exc)
