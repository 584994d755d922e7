"""Statistics over benchmark samples: regression tests, FDR control, summaries, anomalies and
trend forecasts. Pure functions over numbers; results are frozen dataclasses.

- `compare_samples` compares a candidate sample with a baseline: two-sided Mann-Whitney U
  p-value, Hodges-Lehmann shift (median of all pairwise differences candidate - baseline) and
  its distribution-free confidence interval from the Mann-Whitney critical values (exact null
  distribution below 50 values a side, Normal approximation with continuity correction above;
  ties are not corrected for in the interval). Pairwise differences are materialised, so memory
  is O(len(baseline) * len(candidate)).
- `classify` turns a comparison into a regression, improvement or no change, given the metric's
  direction, a significance level and a practical threshold in percent; `judge_all` does so for
  many metrics after a Benjamini-Hochberg adjustment (`benjamini_hochberg`).
- `summarize`: count, mean, median, p95 (linear interpolation), sample std, t interval.
- `robust_anomaly`: modified z-score (Iglewicz and Hoaglin) of a value against a reference.
- `forecast`: Theil-Sen line, Kendall tau test and prediction intervals for the next values.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

Direction = Literal["lower", "higher"]
Verdict = Literal["regression", "improvement", "unchanged"]

EXACT_LIMIT = 50
MAD_SCALE = 1.4826
# Iglewicz and Hoaglin's fallback when the MAD is 0: the mean absolute deviation times sqrt(pi/2).
MEAN_AD_SCALE = 1.253314


@dataclass(frozen=True, slots=True)
class Comparison:
    """Candidate against baseline: sizes, medians, Hodges-Lehmann shift with its interval.

    `shift` and its bounds are in the metric's units (candidate - baseline); the `pct_*` fields
    divide them by |baseline median| (None when that median is 0). `confidence` is the coverage
    the interval actually achieves, which is below the requested one only for tiny samples.
    """

    n_baseline: int
    n_candidate: int
    baseline_median: float
    candidate_median: float
    shift: float
    shift_low: float
    shift_high: float
    confidence: float
    pct_change: float | None
    pct_low: float | None
    pct_high: float | None
    p_value: float
    direction: Direction


@dataclass(frozen=True, slots=True)
class Judgement:
    """One metric's comparison, its Benjamini-Hochberg adjusted p-value and the verdict."""

    comparison: Comparison
    q_value: float
    verdict: Verdict


@dataclass(frozen=True, slots=True)
class Summary:
    """Descriptive statistics of one sample; std and the interval are None below 2 values."""

    count: int
    mean: float
    median: float
    p95: float
    std: float | None
    ci_low: float | None
    ci_high: float | None


@dataclass(frozen=True, slots=True)
class Anomaly:
    """A value's robust z-score against a reference sample and whether it passes `threshold`."""

    value: float
    median: float
    spread: float
    z: float
    anomalous: bool


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """Predicted value at 0-based position `index` with its prediction interval."""

    index: int
    value: float
    low: float
    high: float


@dataclass(frozen=True, slots=True)
class Forecast:
    """Theil-Sen trend of a series, its Kendall tau test and the forecast points."""

    slope: float
    intercept: float
    slope_low: float
    slope_high: float
    tau: float
    p_value: float
    trend: bool
    residual_scale: float
    points: tuple[ForecastPoint, ...]


def sample(values: Sequence[float] | np.ndarray, name: str = "values") -> np.ndarray:
    """`values` as a non-empty 1-D float array; raises ValueError otherwise or on NaN/inf."""
    x = np.asarray(values, dtype=float)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} must be finite numbers")
    return x


def mann_whitney_cdf(m: int, n: int) -> np.ndarray:
    """P(U <= u) for u = 0..m*n under H0 for samples of sizes m and n, without ties.

    The counts are the coefficients of the Gaussian binomial [m+n choose m] in q, built as the
    product over i = 1..m of (1 - q^(n+i)) / (1 - q^i).
    """
    # Python integers (object arrays) keep the counts exact; they reach C(m+n, m).
    counts = np.zeros(m * n + 1, dtype=object)
    counts[0] = 1
    for i in range(1, m + 1):
        shifted = np.zeros_like(counts)
        shifted[n + i :] = counts[: -(n + i)]
        counts = counts - shifted
        for r in range(i):
            counts[r::i] = np.cumsum(counts[r::i])
    return (np.cumsum(counts) / sum(counts)).astype(float)


def hodges_lehmann_rank(m: int, n: int, confidence: float) -> tuple[int, float]:
    """1-based rank k of the lower bound among the m*n sorted differences, and the coverage.

    The interval [D(k), D(mn+1-k)] covers the shift with probability 1 - 2 P(U <= k-1); k is the
    largest rank keeping that at or above `confidence` (at least 1).
    """
    half_alpha = (1 - confidence) / 2
    if m < EXACT_LIMIT and n < EXACT_LIMIT:
        cdf = mann_whitney_cdf(m, n)
        k = int(np.searchsorted(cdf, half_alpha, side="right"))
        k = max(k, 1)
        return k, 1 - 2 * float(cdf[k - 1])
    mean = m * n / 2
    sd = math.sqrt(m * n * (m + n + 1) / 12)
    c = math.floor(mean - 0.5 - stats.norm.ppf(1 - half_alpha) * sd)
    k = max(c + 1, 1)
    return k, 1 - 2 * float(stats.norm.cdf((k - 1 + 0.5 - mean) / sd))


def compare_samples(
    baseline: Sequence[float] | np.ndarray,
    candidate: Sequence[float] | np.ndarray,
    *,
    direction: Direction = "lower",
    confidence: float = 0.95,
) -> Comparison:
    """Mann-Whitney U test and Hodges-Lehmann shift of candidate against baseline."""
    base = sample(baseline, "baseline")
    cand = sample(candidate, "candidate")
    if direction not in ("lower", "higher"):
        raise ValueError(f"direction must be 'lower' or 'higher', not {direction!r}")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    p_value = float(stats.mannwhitneyu(cand, base, alternative="two-sided").pvalue)
    differences = np.sort(np.subtract.outer(cand, base), axis=None)
    k, achieved = hodges_lehmann_rank(len(base), len(cand), confidence)
    shift = float(np.median(differences))
    low, high = float(differences[k - 1]), float(differences[-k])
    base_median = float(np.median(base))

    def pct(delta: float) -> float | None:
        return None if base_median == 0 else delta / abs(base_median) * 100

    return Comparison(
        n_baseline=len(base),
        n_candidate=len(cand),
        baseline_median=base_median,
        candidate_median=float(np.median(cand)),
        shift=shift,
        shift_low=low,
        shift_high=high,
        confidence=achieved,
        pct_change=pct(shift),
        pct_low=pct(low),
        pct_high=pct(high),
        # All-tied samples give NaN in scipy: no evidence of a difference.
        p_value=p_value if math.isfinite(p_value) else 1.0,
        direction=direction,
    )


def classify(
    comparison: Comparison,
    *,
    p_value: float | None = None,
    alpha: float = 0.05,
    threshold_pct: float = 1.0,
) -> Verdict:
    """Regression, improvement or unchanged.

    A change counts when its p-value (`p_value` if given, e.g. an FDR-adjusted one, else the
    comparison's) is below `alpha` and its Hodges-Lehmann percent change is at least
    `threshold_pct` in size; with a baseline median of 0 any non-zero shift passes the
    threshold. Its sign and the metric's direction say whether it is a regression.
    """
    p = comparison.p_value if p_value is None else p_value
    pct = comparison.pct_change
    large = comparison.shift != 0 if pct is None else abs(pct) >= threshold_pct
    if p >= alpha or not large or comparison.shift == 0:
        return "unchanged"
    worse = comparison.shift > 0 if comparison.direction == "lower" else comparison.shift < 0
    return "regression" if worse else "improvement"


def benjamini_hochberg(p_values: Sequence[float] | np.ndarray) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (q-values), in the order given."""
    p = np.asarray(p_values, dtype=float)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)) or np.any(np.isnan(p)):
        raise ValueError("p-values must be a 1-D sequence of numbers in [0, 1]")
    m = len(p)
    order = np.argsort(p)
    scaled = p[order] * m / np.arange(1, m + 1)
    adjusted = np.minimum.accumulate(scaled[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(adjusted, 1.0)
    return q.tolist()


def judge_all(
    comparisons: Mapping[str, Comparison],
    *,
    alpha: float = 0.05,
    threshold_pct: float = 1.0,
) -> dict[str, Judgement]:
    """Verdict per metric, with the false discovery rate across all of them held at `alpha`."""
    names = list(comparisons)
    q_values = benjamini_hochberg([comparisons[name].p_value for name in names])
    return {
        name: Judgement(
            comparisons[name],
            q,
            classify(comparisons[name], p_value=q, alpha=alpha, threshold_pct=threshold_pct),
        )
        for name, q in zip(names, q_values, strict=True)
    }


def summarize(values: Sequence[float] | np.ndarray, *, confidence: float = 0.95) -> Summary:
    """Count, mean, median, 95th percentile, sample std and t interval for the mean."""
    x = sample(values)
    n = len(x)
    mean = float(x.mean())
    std = ci_low = ci_high = None
    if n >= 2:
        std = float(x.std(ddof=1))
        half = float(stats.t.ppf((1 + confidence) / 2, n - 1)) * std / math.sqrt(n)
        ci_low, ci_high = mean - half, mean + half
    return Summary(n, mean, float(np.median(x)), float(np.percentile(x, 95)), std, ci_low, ci_high)


def robust_anomaly(
    value: float,
    reference: Sequence[float] | np.ndarray,
    *,
    threshold: float = 3.5,
    scale: float = MAD_SCALE,
) -> Anomaly:
    """Robust z-score of `value` against `reference` (e.g. the current segment's values).

    z = (value - median) / (scale * MAD). When the MAD is 0 the mean absolute deviation times
    1.253314 stands in; when that is 0 too, any value off the median gets an infinite z.
    """
    ref = sample(reference, "reference")
    median = float(np.median(ref))
    deviations = np.abs(ref - median)
    spread = scale * float(np.median(deviations))
    if spread == 0:
        spread = MEAN_AD_SCALE * float(deviations.mean())
    offset = float(value) - median
    z = offset / spread if spread > 0 else _unscaled_z(offset)
    return Anomaly(float(value), median, spread, z, abs(z) > threshold)


def _unscaled_z(offset: float) -> float:
    """z-score against a reference without spread: 0 on the median, infinite elsewhere."""
    return 0.0 if offset == 0 else math.copysign(math.inf, offset)


def forecast(
    values: Sequence[float] | np.ndarray,
    steps: int = 1,
    *,
    confidence: float = 0.95,
    alpha: float = 0.05,
) -> Forecast:
    """Forecast the next `steps` values of a series observed at positions 0..n-1.

    The line is Theil-Sen's (slope CI at `confidence`); `trend` says whether Kendall's tau
    between position and value is significant at `alpha`. The forecast always follows the line.
    Prediction interval: the least-squares formula
    y0 +- t(n-2) * s * sqrt(1 + 1/n + (x0 - mean x)^2 / sum (x - mean x)^2) with the robust
    residual scale s = 1.4826 * MAD of the residuals about the Theil-Sen line; it assumes
    roughly independent, symmetric residuals.
    """
    y = sample(values)
    n = len(y)
    if n < 3:
        raise ValueError("forecast needs at least 3 values")
    if steps < 1:
        raise ValueError("steps must be at least 1")
    x = np.arange(n, dtype=float)
    slope, intercept, slope_low, slope_high = stats.theilslopes(y, x, alpha=confidence)
    tau_result = stats.kendalltau(x, y)
    tau = float(tau_result.statistic)
    p_value = float(tau_result.pvalue)
    if not math.isfinite(tau):
        # A constant series has no ranking to correlate with: no trend.
        tau, p_value = 0.0, 1.0
    residuals = y - (intercept + slope * x)
    s = MAD_SCALE * float(np.median(np.abs(residuals - np.median(residuals))))
    t = float(stats.t.ppf((1 + confidence) / 2, n - 2))
    sxx = float(((x - x.mean()) ** 2).sum())
    points = []
    for x0 in range(n, n + steps):
        y0 = float(intercept + slope * x0)
        half = t * s * math.sqrt(1 + 1 / n + (x0 - x.mean()) ** 2 / sxx)
        points.append(ForecastPoint(x0, y0, y0 - half, y0 + half))
    return Forecast(
        slope=float(slope),
        intercept=float(intercept),
        slope_low=float(slope_low),
        slope_high=float(slope_high),
        tau=tau,
        p_value=p_value,
        trend=p_value < alpha,
        residual_scale=s,
        points=tuple(points),
    )
