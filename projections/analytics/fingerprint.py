"""Error-message fingerprints: the same failure with different numbers, ids or paths groups.

`fingerprint(message)` lowercases a message and replaces what varies between occurrences of
one failure (uuids, hex ids, addresses, paths, quoted strings, numbers) with placeholders;
`similarity(a, b)` is the Jaccard index of two fingerprints' tokens, for grouping near-identical
fingerprints (e.g. the same assertion with a different variable name).  Both are pure.
"""

from __future__ import annotations

import re
from functools import lru_cache

MAX_INPUT = 2000  # the head of a message identifies it; tracebacks beyond this add noise

# Order matters: specific shapes first, so an address is not eaten by the number rule.
_RULES: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b"), "<uuid>"),
    (re.compile(r"\b[a-z]+://[^\s'\"<>]+"), "<url>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<ip>"),
    (re.compile(r"\b0x[0-9a-f]+\b"), "<addr>"),
    (re.compile(r"'[^'\n]*'|\"[^\"\n]*\""), "<str>"),
    (re.compile(r"(?:[a-z]:)?(?:[\w.\-~]*[/\\])+[\w.\-]+"), "<path>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{8,}\b"), "<hex>"),
    (re.compile(r"\d+(?:\.\d+)?(?:e[+-]?\d+)?"), "<n>"),
)
_SPACE = re.compile(r"\s+")
_TOKEN = re.compile(r"<\w+>|\w+|[^\w\s]")


@lru_cache(maxsize=8192)
def fingerprint(message: str) -> str:
    """The message with its variable parts replaced by placeholders, lowercased, one line."""
    text = message[:MAX_INPUT].lower()
    for pattern, placeholder in _RULES:
        text = pattern.sub(placeholder, text)
    return _SPACE.sub(" ", text).strip()


def tokens(fp: str) -> frozenset[str]:
    """The distinct tokens of a fingerprint: words, placeholders and punctuation."""
    return frozenset(_TOKEN.findall(fp))


def similarity(a: str, b: str) -> float:
    """Jaccard similarity of two fingerprints' token sets: 1.0 identical, 0.0 disjoint."""
    ta, tb = tokens(a), tokens(b)
    if not ta and not tb:
        return 1.0
    return len(ta & tb) / len(ta | tb)


def group(fingerprints: list[str], threshold: float = 0.8) -> list[list[str]]:
    """Greedy single-pass grouping: each fingerprint joins the first group whose first member
    is at least `threshold` similar, else starts a group.  Input order decides ties."""
    groups: list[tuple[frozenset[str], list[str]]] = []
    for fp in fingerprints:
        tk = tokens(fp)
        for head, members in groups:
            union = len(head | tk)
            if union == 0 or len(head & tk) / union >= threshold:
                members.append(fp)
                break
        else:
            groups.append((tk, [fp]))
    return [members for _, members in groups]
