"""Steps in benchmark histories: flat levels, multiplicative timing noise, rare outliers.

`detect_steps(values)` returns the confirmed steps as `changepoint.ChangePoint`s, each with
its size in percent, the 95% interval of that size, Mann-Whitney's p-value and the positions
where it may begin. It is the detector of `dtf trends` and `dtf report`.

How it works, with the defaults (the same for every series, never tuned per series):

1. Positive series are taken as logarithms, so that a step of +10% is the same distance at
   every level and multiplicative noise becomes additive. A series with a value <= 0 is
   analysed as it is (its sizes are then in percent of the median before the change).
2. The noise scale is robust: 1.4826 * MAD of the first differences, over sqrt(2). A step
   moves one difference and an outlier two, so neither inflates it, unlike the global
   standard deviation, which grows with every step and made steps of 5% invisible.
3. Outliers are clipped, not dropped: each value's distance from the running median of 7
   points is limited to `clip` (3) noise scales. A median of 7 follows a step as soon as it
   happens, so the values on either side of a step are left alone.
4. Binary segmentation over flat segments (`changepoint.segment_cost(..., "mean")` on the
   clipped values in units of the noise scale) proposes changes whose cost reduction exceeds
   `penalty_scale * log(n)`, both parts keeping `min_size` points.
5. Each change is confirmed by Mann-Whitney's U test between its neighbouring segments of the
   unclipped values (rank-based, so an outlier counts as one high rank), merged away when its
   p-value is above `alpha`, re-placed at the best split between its neighbours, and
   re-tested, until the changes stay put (`changepoint.settled`), in the way E-divisive
   pipelines (MongoDB's, Otava's) confirm their candidates by significance.
6. The size is the Hodges-Lehmann shift of the logarithms (the median of all pairwise
   differences after - before), with its distribution-free interval
   (`stats.compare_samples`), over at most `MAX_DESCRIBED` values each side of the change,
   turned back into a ratio: `100 * (exp(shift) - 1)` percent.

Figures (`python -m bench.steps`: 500 histories of 80-400 points, noise 0.5-2%, 1% outliers
at 1.3-2x, 0-3 steps of 5-30% at least 15 points apart): recall 1.000 of 728 steps within 5
points, 1 false alarm in 119,754 points (0.004 per 500), the size interval holds the planted
size for 94.6% of them. `changepoint.detect` finds 0.706 of the same steps: its z-scores use
the global standard deviation and Welch's test is moved by outliers. The defaults sit in a
plateau: `penalty_scale` 1.5 to 6 and `alpha` 0.01 to 0.0001 all keep recall at 1.000 and
false alarms at or below 0.11 per 500 points. Within it, 3 was picked on harder
synthetic data: it finds 0.95 of steps of 2-5% (2: 0.97, 4: 0.93) and holds false alarms on
noise with a lag-one autocorrelation of 0.3 to 0.29 per 500 points (2: 0.66, 4: 0.11).

Known limits: the noise is assumed independent; with positively autocorrelated noise the
differences understate it and false alarms grow (0.29 per 500 points at a lag-one
autocorrelation of 0.3, 5.4 at 0.6). Segments are flat: a slow drift is cut into a staircase
of small steps. Two steps closer than `min_size` points are seen as one at best.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import stats as scipy_stats

from projections.analytics.changepoint import (
    ChangePoint,
    SegmentCost,
    binary_segmentation,
    check_parameters,
    location_interval,
    segment_cost,
    settled,
    validated_series,
)
from projections.analytics.stats import MAD_SCALE, MEAN_AD_SCALE, compare_samples

DEFAULT_PENALTY_SCALE = 3.0
DEFAULT_MIN_SIZE = 5
DEFAULT_ALPHA = 0.001
DEFAULT_CLIP = 3.0
# The running median spans 2 * 3 + 1 points: wide enough that one outlier (or two close
# together) cannot move it, narrow enough that it follows a step within 4 points.
MEDIAN_HALF_WIDTH = 3
# The Hodges-Lehmann interval materialises all pairwise differences; the values nearest a
# change are also the ones that say most about its size.
MAX_DESCRIBED = 500


def detect_steps(
    values: Sequence[float | None] | np.ndarray,
    *,
    penalty_scale: float = DEFAULT_PENALTY_SCALE,
    min_size: int = DEFAULT_MIN_SIZE,
    alpha: float = DEFAULT_ALPHA,
    clip: float = DEFAULT_CLIP,
) -> list[ChangePoint]:
    """Confirmed steps of `values`, in ascending index order.

    Returns no change for a constant series or one shorter than `2 * min_size`. Raises
    ValueError for missing (None/NaN) or infinite values, a non-1-D input or bad parameters.
    """
    x = validated_series(values)
    check_parameters(penalty_scale, min_size, alpha)
    if clip <= 0:
        raise ValueError("clip must be positive")
    n = len(x)
    if n < 2 * min_size:
        return []
    relative = bool(np.all(x > 0))
    y = np.log(x) if relative else x
    sigma = noise_scale(y)
    if sigma == 0 or not math.isfinite(sigma):
        return []
    cleaned = clipped(y, sigma, clip)
    cost = segment_cost((cleaned - cleaned.mean()) / sigma, "mean")
    candidates = binary_segmentation(n, cost, penalty_scale * math.log(n), min_size)
    kept = settled(y, cost, candidates, alpha, min_size, mann_whitney_p_value)
    return [_describe(x, y, relative, cost, bounds) for bounds in kept]


def noise_scale(y: np.ndarray) -> float:
    """Robust standard deviation of the noise of `y`, from its first differences.

    1.4826 * MAD / sqrt(2); when more than half the differences are equal (quantised
    values), the mean absolute deviation times 1.2533 stands in, as in `robust_anomaly`.
    """
    differences = np.diff(y)
    deviations = np.abs(differences - np.median(differences))
    spread = MAD_SCALE * float(np.median(deviations))
    if spread == 0:
        spread = MEAN_AD_SCALE * float(deviations.mean())
    return spread / math.sqrt(2)


def running_median(y: np.ndarray, half_width: int = MEDIAN_HALF_WIDTH) -> np.ndarray:
    """Median of each value and its `half_width` neighbours either side.

    The ends are mirrored (without repeating the end value), so an outlier at an end appears
    once in its window, not `half_width + 1` times.
    """
    h = min(half_width, len(y) - 1)
    if h < 1:
        return y.copy()
    padded = np.pad(y, h, mode="reflect")
    return np.median(sliding_window_view(padded, 2 * h + 1), axis=1)


def clipped(y: np.ndarray, sigma: float, clip: float) -> np.ndarray:
    """`y` with each value at most `clip * sigma` from its running median."""
    median = running_median(y)
    return median + np.clip(y - median, -clip * sigma, clip * sigma)


def mann_whitney_p_value(before: np.ndarray, after: np.ndarray) -> float:
    """Two-sided Mann-Whitney U p-value; 1 when scipy has none (all values tied)."""
    p = float(scipy_stats.mannwhitneyu(before, after, alternative="two-sided").pvalue)
    return p if math.isfinite(p) else 1.0


def _describe(
    x: np.ndarray,
    y: np.ndarray,
    relative: bool,
    cost: SegmentCost,
    found: tuple[int, int, int, float],
) -> ChangePoint:
    """A ChangePoint from `(start, change, end, p_value)`: means of `x`, size from `y`."""
    start, change, end, p_value = found
    compared = compare_samples(y[start:change][-MAX_DESCRIBED:], y[change:end][:MAX_DESCRIBED])
    pct: float | None
    low: float | None
    high: float | None
    if relative:
        # A shift of the logarithms is a ratio of the values.
        pct, low, high = (
            100 * math.expm1(v) for v in (compared.shift, compared.shift_low, compared.shift_high)
        )
    else:
        pct, low, high = compared.pct_change, compared.pct_low, compared.pct_high
    index_low, index_high = location_interval(cost, start, change, end)
    return ChangePoint(
        index=change,
        before_mean=float(x[start:change].mean()),
        after_mean=float(x[change:end].mean()),
        pct_change=pct,
        p_value=p_value,
        pct_low=low,
        pct_high=high,
        index_low=index_low,
        index_high=index_high,
    )
