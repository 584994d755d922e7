"""TCPDBench's change-point scores: F1 with a margin and segment covering.

These follow `TCPDBench/cpdbench/metrics.py` (van den Burg & Williams, arXiv:2003.06222) and the
definitions in `shared/tcpd/README.md`, so a detector's figures can be set beside the published
table. Annotations map an annotator id to that annotator's 0-based change-point indices;
a change point is the first index of a new segment.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence

DEFAULT_MARGIN = 5


def clean_predictions(predictions: Iterable[int], n_obs: int) -> list[int]:
    """Sorted, deduplicated predictions restricted to `1 <= x <= n_obs - 2`, as TCPDBench does."""
    return sorted({int(x) for x in predictions if 1 <= x <= n_obs - 2})


def matches(truth: Iterable[int], predictions: Iterable[int], margin: int = 5) -> dict[int, int]:
    """Each true point matched one-to-one with the closest unused prediction within `margin`:
    `{true point: its prediction}`.

    Truth is visited in ascending order and ties in distance go to the smaller prediction, which
    makes the matching deterministic (TCPDBench iterates a Python set of small ints, which is the
    same order in practice).
    """
    unused = set(predictions)
    pairs: dict[int, int] = {}
    for tau in sorted(set(truth)):
        close = sorted((abs(tau - x), x) for x in unused if abs(tau - x) <= margin)
        if close:
            pairs[tau] = close[0][1]
            unused.remove(close[0][1])
    return pairs


def true_positives(truth: Iterable[int], predictions: Iterable[int], margin: int = 5) -> set[int]:
    """The true points that a prediction within `margin` matches (`matches`)."""
    return set(matches(truth, predictions, margin))


def precision_recall(
    annotations: Mapping[str, Sequence[int]],
    predictions: Iterable[int],
    margin: int = DEFAULT_MARGIN,
) -> tuple[float, float]:
    """Precision against the union of annotators and recall averaged over annotators.

    Index 0 is added to every annotator's set and to the predictions, so a "no change" answer
    still counts as one correct point.
    """
    if not annotations:
        raise ValueError("at least one annotator is needed")
    per_annotator = [set(points) | {0} for points in annotations.values()]
    predicted = set(predictions) | {0}
    union = set().union(*per_annotator)
    precision = len(true_positives(union, predicted, margin)) / len(predicted)
    recall = sum(
        len(true_positives(points, predicted, margin)) / len(points) for points in per_annotator
    ) / len(per_annotator)
    return precision, recall


def f_measure(
    annotations: Mapping[str, Sequence[int]],
    predictions: Iterable[int],
    margin: int = DEFAULT_MARGIN,
) -> float:
    """F1 (harmonic mean of precision and recall) of predictions against all annotators."""
    precision, recall = precision_recall(annotations, predictions, margin)
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def partition_from_change_points(points: Iterable[int], n_obs: int) -> list[range]:
    """Segments of `0..n_obs-1` where each change point starts a new segment.

    Points outside `1..n_obs-1` cannot start a segment and are ignored, like TCPDBench's
    partition (which never opens an empty segment).
    """
    starts = sorted({int(p) for p in points if 0 < p < n_obs})
    bounds = [0, *starts, n_obs]
    return [range(a, b) for a, b in itertools.pairwise(bounds) if b > a]


def _jaccard(a: range, b: range) -> float:
    """Jaccard index of two integer intervals."""
    inter = max(0, min(a.stop, b.stop) - max(a.start, b.start))
    return inter / (len(a) + len(b) - inter)


def cover_single(truth: Sequence[range], predicted: Sequence[range]) -> float:
    """Cover of one true partition by a predicted one (both over the same `0..n-1`)."""
    n = sum(len(seg) for seg in truth)
    if n != sum(len(seg) for seg in predicted):
        raise ValueError("partitions cover different numbers of points")
    total = sum(len(a) * max(_jaccard(a, b) for b in predicted) for a in truth)
    return total / n


def covering(
    annotations: Mapping[str, Sequence[int]],
    predictions: Iterable[int],
    n_obs: int,
) -> float:
    """Segment covering of the predicted partition, averaged over annotators."""
    if not annotations:
        raise ValueError("at least one annotator is needed")
    if n_obs < 1:
        raise ValueError("n_obs must be positive")
    predicted = partition_from_change_points(predictions, n_obs)
    scores = [
        cover_single(partition_from_change_points(points, n_obs), predicted)
        for points in annotations.values()
    ]
    return sum(scores) / len(scores)
