"""Listing a suite's test items, with their requirements, without importing it here.

Collection runs in a child pytest (`python -m dtf_child collect`) in the project root,
which writes one JSON document; the user's tests are never imported into the caller.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dtf.errors import CollectionError
from dtf.runner.child.failure_text import summarize
from dtf.runner.child.wire import OUT_ENV, Collected, WireCase, WireError
from dtf.runner.launch import child_command, child_env, describe_exit, kill_group
from events.catalogue import CaseResult, Requirements

# Exit codes after which the document is complete: collection errors make pytest report
# "interrupted", and an empty selection "no tests collected".
# pytest's exit codes (pytest.ExitCode), spelt out: importing pytest here costs ~0.15 s at
# every `dtf run` start, and this process never runs tests itself.
_OK, _INTERRUPTED, _USAGE_ERROR, _NO_TESTS_COLLECTED = 0, 2, 4, 5
_COLLECTED = {_OK, _INTERRUPTED, _NO_TESTS_COLLECTED}


@dataclass(frozen=True)
class CollectedItem:
    """One test item to run."""

    nodeid: str
    path: str  # the file part of the node id
    requirements: Requirements


@dataclass(frozen=True)
class Collection:
    """What pytest collected: items to run, results known already, and collection errors."""

    items: tuple[CollectedItem, ...]
    # Module-level skips (`pytest.skip(..., allow_module_level=True)`, `importorskip`):
    # plain pytest counts each as one skipped test.
    precollected: tuple[CaseResult, ...]
    errors: tuple[CaseResult, ...]


def collect(
    root: Path,
    args: Sequence[str],
    *,
    python: str = sys.executable,
    timeout: float = 300.0,
) -> Collection:
    """Collect the suite that `pytest ARGS` in `root` would run.

    Raises `CollectionError` (one line) for pytest usage errors, a conftest that cannot be
    imported, a collector that crashed or hung, or a missing interpreter.
    """
    if not root.is_dir():
        raise CollectionError(f"project root is not a directory: {root}")
    with tempfile.TemporaryDirectory(prefix="dtf-collect-") as tmp:
        out = Path(tmp) / "collection.json"
        returncode, output = _run_collector(root, args, python, timeout, out)
        if returncode in _COLLECTED and out.exists():
            return _read(out)
    if returncode == _USAGE_ERROR:
        raise CollectionError(f"pytest could not start in {root}: {summarize(output)}")
    detail = summarize(output) or "no output"
    raise CollectionError(f"pytest collector {describe_exit(returncode)} in {root}: {detail}")


def case_result(case: WireCase) -> CaseResult:
    """The catalogue's `CaseResult` for a result sent by a child."""
    return CaseResult(
        nodeid=case.nodeid,
        outcome=case.outcome,
        duration=case.duration,
        message=case.message,
        longrepr=case.longrepr,
        tally=case.tally,
    )


def _run_collector(
    root: Path, args: Sequence[str], python: str, timeout: float, out: Path
) -> tuple[int, str]:
    """Run the collect-mode child; its exit code and merged stdout and stderr."""
    try:
        proc = subprocess.Popen(
            child_command(python, "collect", args),
            cwd=root,
            env=child_env(None, {OUT_ENV: str(out)}),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    except OSError as exc:
        raise CollectionError(f"cannot start {python}: {exc.strerror or exc}") from None
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_group(proc.pid)
        proc.communicate()
        raise CollectionError(f"pytest collection in {root} timed out after {timeout:g}s") from None
    finally:
        # Whatever conftest code started must not outlive collection.
        kill_group(proc.pid)
    return proc.returncode, output.decode(errors="replace")


def _read(out: Path) -> Collection:
    try:
        doc = Collected.from_bytes(out.read_bytes())
    except WireError as exc:
        raise CollectionError(f"unreadable collection from pytest: {exc}") from None
    return collection_of(doc)


def collection_of(doc: Collected) -> Collection:
    """The caller's view of what a child collected (collect mode, or a session's Ready)."""
    return Collection(
        items=tuple(
            CollectedItem(item.nodeid, _file_of(item.nodeid), _requirements(item.requirements))
            for item in doc.items
        ),
        precollected=tuple(case_result(case) for case in doc.skipped),
        errors=tuple(case_result(case) for case in doc.errors),
    )


def _file_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def _requirements(checked: dict[str, object]) -> Requirements:
    """A marker's arguments, checked by the child (`check_requirements`)."""
    fields: dict[str, Any] = dict(checked)
    for key in ("labels", "cpu_flags"):
        fields[key] = tuple(fields.get(key, ()))
    return Requirements(**fields)
