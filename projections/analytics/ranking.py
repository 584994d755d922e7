"""Ranking configurations by their samples of one metric: which is best, by how much, and
whether the samples can tell. Pure functions over numbers.

`rank(samples, direction=...)` orders the configurations by median (best first; ties by
name), and compares each with the next one down: the margin is the Hodges-Lehmann shift in
percent of the next one's median, positive meaning better whichever the direction, with its
95% distribution-free interval and Mann-Whitney's two-sided p-value (`stats.compare_samples`,
over the latest `MAX_COMPARED` samples of each). The ranking is decided when the best has a
significant margin over the runner-up and both have at least `min_samples` samples; otherwise
`reason` says why the data is too thin to decide.

Mann-Whitney's test needs 4 samples a side before any p-value falls below 0.05 (with 3 and 3
the smallest is 0.1), so 3 samples are the floor below which a ranking is not even tested.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

import numpy as np

from projections.analytics.stats import Direction, Summary, compare_samples, summarize

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 3
# The comparison materialises all pairwise differences; the latest samples are also the ones
# that say which configuration is best now.
MAX_COMPARED = 2000

MarginVerdict = Literal["significant", "not significant", "too few samples"]


@dataclass(frozen=True, slots=True)
class Ranked:
    """One configuration in a ranking and its margin over the next one down.

    The margin fields, `p_value` and `verdict` are None for the last configuration; the
    percentages are None when the next one's median is 0.
    """

    name: str
    summary: Summary
    margin_pct: float | None
    margin_low: float | None
    margin_high: float | None
    p_value: float | None
    verdict: MarginVerdict | None


@dataclass(frozen=True, slots=True)
class Ranking:
    """Configurations best first; `reason` is "" when `decided`, else why not."""

    direction: Direction
    entries: tuple[Ranked, ...]
    decided: bool
    reason: str
    alpha: float
    min_samples: int

    @property
    def best(self) -> Ranked:
        return self.entries[0]


def rank(
    samples: Mapping[str, Sequence[float] | np.ndarray],
    *,
    direction: Direction,
    alpha: float = DEFAULT_ALPHA,
    min_samples: int = DEFAULT_MIN_SAMPLES,
) -> Ranking:
    """Rank the configurations named by `samples`' keys; raises ValueError when there is none,
    a sample is empty or not finite, or a parameter is out of range."""
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    if not 0 < alpha < 1:
        raise ValueError("alpha must be in (0, 1)")
    if min_samples < 1:
        raise ValueError("min_samples must be at least 1")
    if not samples:
        raise ValueError("no configuration to rank")
    arrays = {name: np.asarray(values, dtype=float) for name, values in samples.items()}
    summaries = {name: summarize(values) for name, values in arrays.items()}
    sign = 1.0 if direction == "higher" else -1.0
    order = sorted(arrays, key=lambda name: (-sign * summaries[name].median, name))
    entries = [
        _margin(name, arrays[name], summaries[name], below, arrays[below], sign, alpha, min_samples)
        for name, below in pairwise(order)
    ]
    last = order[-1]
    entries.append(Ranked(last, summaries[last], None, None, None, None, None))
    reason = _undecided(entries, alpha, min_samples)
    return Ranking(direction, tuple(entries), not reason, reason, alpha, min_samples)


def _margin(
    name: str,
    values: np.ndarray,
    summary: Summary,
    below: str,
    below_values: np.ndarray,
    sign: float,
    alpha: float,
    min_samples: int,
) -> Ranked:
    """`name` with its margin over `below`, the configuration ranked next."""
    compared = compare_samples(
        below_values[-MAX_COMPARED:],
        values[-MAX_COMPARED:],
        direction="higher" if sign > 0 else "lower",
    )
    # compare_samples gives candidate - baseline; better is that sign for higher-is-better
    # and the opposite for lower-is-better.
    low = high = None
    if compared.pct_low is not None and compared.pct_high is not None:
        low, high = sorted((sign * compared.pct_low, sign * compared.pct_high))
    verdict: MarginVerdict
    if min(len(values), len(below_values)) < min_samples:
        verdict = "too few samples"
    elif compared.p_value < alpha:
        verdict = "significant"
    else:
        verdict = "not significant"
    return Ranked(
        name=name,
        summary=summary,
        margin_pct=None if compared.pct_change is None else sign * compared.pct_change,
        margin_low=low,
        margin_high=high,
        p_value=compared.p_value,
        verdict=verdict,
    )


def _undecided(entries: Sequence[Ranked], alpha: float, min_samples: int) -> str:
    """Why the best configuration cannot be named with confidence; "" when it can."""
    if len(entries) < 2:
        return "only one configuration was measured"
    best, runner_up = entries[0], entries[1]
    thin = [e for e in (best, runner_up) if e.summary.count < min_samples]
    if thin:
        counts = ", ".join(f"{e.name} has {e.summary.count}" for e in thin)
        return f"too few samples: {counts} (at least {min_samples} needed)"
    if best.verdict != "significant":
        return (
            f"the margin of {best.name} over {runner_up.name} is not significant "
            f"(p = {best.p_value:.3g}, alpha {alpha:g})"
        )
    return ""
