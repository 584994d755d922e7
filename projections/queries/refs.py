"""Which runs a ref names, for `dtf regressions --baseline/--candidate`.

A ref is a run id; else a commit (full, or a prefix of at least 4 characters that matches one
commit), meaning all its runs; else a branch name, meaning its latest `latest` runs; a full
commit wins over a branch of the same name, a branch over a commit prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from dtf.errors import ConfigError
from projections.queries.read import RunRow

MIN_COMMIT_PREFIX = 4


@dataclass(frozen=True, slots=True)
class Selection:
    """The runs a ref names, and how it was read (`run`, `commit` or `branch`)."""

    ref: str
    kind: str
    run_ids: tuple[str, ...]
    commits: tuple[str, ...]


def resolve(ref: str, runs: Sequence[RunRow], *, latest: int) -> Selection:
    """The runs `ref` names (see the module docstring); ConfigError when none or ambiguous."""
    if latest < 1:
        raise ConfigError("--runs must be at least 1")
    by_id = [r for r in runs if r.run_id == ref]
    if by_id:
        return _selection(ref, "run", by_id)
    exact = [r for r in runs if r.commit == ref]
    if exact:
        return _selection(ref, "commit", exact)
    on_branch = [r for r in runs if r.branch == ref]
    if on_branch:
        newest = sorted(on_branch, key=lambda r: (r.submitted_at or 0.0, r.run_id))[-latest:]
        return _selection(ref, "branch", newest)
    if len(ref) >= MIN_COMMIT_PREFIX:
        prefixed = [r for r in runs if r.commit.startswith(ref)]
        commits = sorted({r.commit for r in prefixed})
        if len(commits) > 1:
            shown = ", ".join(c[:12] for c in commits[:3])
            raise ConfigError(f"ref {ref!r} is ambiguous: commits {shown}")
        if prefixed:
            return _selection(ref, "commit", prefixed)
    raise ConfigError(f"unknown ref {ref!r}: not a run id, commit or branch in the database")


def _selection(ref: str, kind: str, runs: Iterable[RunRow]) -> Selection:
    chosen = list(runs)
    return Selection(
        ref,
        kind,
        tuple(r.run_id for r in chosen),
        tuple(sorted({r.commit for r in chosen if r.commit})),
    )


def check_disjoint(baseline: Selection, candidate: Selection) -> None:
    """ConfigError when the two sides share runs: a run cannot be compared with itself."""
    shared = sorted(set(baseline.run_ids) & set(candidate.run_ids))
    if shared:
        raise ConfigError(
            f"baseline {baseline.ref!r} and candidate {candidate.ref!r} share runs "
            f"({', '.join(shared[:3])})"
        )


def selection_json(selection: Selection) -> dict[str, Any]:
    return {
        "ref": selection.ref,
        "kind": selection.kind,
        "runs": list(selection.run_ids),
        "commits": list(selection.commits),
    }
