"""Score dtf's change-point detectors on synthetic benchmark histories with planted steps.

A history looks like a benchmark's record over commits: a flat level with multiplicative
timing noise, an occasional outlier from a noisy neighbour, and a few steps where a commit
changed performance. `history(rng)` draws one (all sizes below are the defaults):

- 80 to 400 points, a level between 0.1 and 1000 (units do not matter to the detectors);
- noise: each point is `level * (1 + sigma * e)`, e standard Normal, sigma 0.5% to 2%;
- outliers: each point with probability 1% is multiplied by 1.3 to 2 (a slower run);
- 0 to 3 steps of 5% to 30% (up or down, a multiplicative factor of 1 +- size), each at
  least `MIN_GAP` points from the ends and from each other, so that both sides of a step
  hold enough points to judge it.

A detected change within `MARGIN` points of a planted step finds it (one-to-one, the closest
first, as TCPDBench matches); every other detected change is a false alarm. The figures are
the recall of planted steps, false alarms per 500 points, the share of found steps whose
reported interval of the size holds the planted size, and the mean location error.

Run from the repository root:  python -m bench.steps [--histories N] [--seed S] [--check]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from projections.analytics.changepoint import ChangePoint
from projections.analytics.detectors import DEFAULT_DETECTOR, DETECTORS
from projections.analytics.tcpd_metrics import matches

SEED = 20240615
HISTORIES = 500
MARGIN = 5
MIN_GAP = 15
GOAL_RECALL = 0.9
GOAL_FALSE_PER_500 = 1.0
SIZE_BINS = ((5.0, 10.0), (10.0, 20.0), (20.0, 30.0))

Detector = Callable[[np.ndarray], list[ChangePoint]]


@dataclass(frozen=True, slots=True)
class History:
    """One synthetic history: its values, the planted steps and their sizes in percent."""

    values: np.ndarray
    steps: tuple[int, ...]
    sizes_pct: tuple[float, ...]
    noise_pct: float


@dataclass(frozen=True, slots=True)
class Found:
    """A planted step matched by a detected change."""

    planted_pct: float
    noise_pct: float
    error: int
    covered: bool  # the change's size interval holds the planted size
    located: bool  # its location interval holds the planted index


@dataclass(frozen=True, slots=True)
class Score:
    """The figures of one detector over a set of histories."""

    histories: int
    points: int
    planted: int
    found: tuple[Found, ...]
    missed: tuple[tuple[float, float], ...]  # (size %, noise %) of each missed step
    false_alarms: int
    seconds: float

    @property
    def recall(self) -> float:
        return len(self.found) / self.planted if self.planted else 1.0

    @property
    def false_per_500(self) -> float:
        return self.false_alarms * 500 / self.points

    @property
    def coverage(self) -> float:
        return sum(f.covered for f in self.found) / len(self.found) if self.found else 1.0

    @property
    def located(self) -> float:
        return sum(f.located for f in self.found) / len(self.found) if self.found else 1.0

    @property
    def mean_error(self) -> float:
        return sum(f.error for f in self.found) / len(self.found) if self.found else 0.0

    def recall_of(self, low: float, high: float) -> float:
        """Recall of the planted steps whose size lies in [low, high) percent."""
        hit = sum(low <= abs(f.planted_pct) < high for f in self.found)
        miss = sum(low <= abs(size) < high for size, _ in self.missed)
        return hit / (hit + miss) if hit + miss else 1.0


def step_positions(rng: np.random.Generator, n: int, count: int, gap: int) -> list[int]:
    """`count` sorted positions in `gap..n-gap`, each at least `gap` from the next."""
    # Positions with the gaps taken out are uniform; adding the gaps back keeps them apart.
    free = n - gap * (count + 1)
    if count == 0 or free < 0:
        return []
    offsets = np.sort(rng.integers(0, free + 1, size=count))
    return [int(offset + gap * (k + 1)) for k, offset in enumerate(offsets)]


def history(
    rng: np.random.Generator,
    *,
    length: tuple[int, int] = (80, 400),
    noise_pct: tuple[float, float] = (0.5, 2.0),
    outlier_rate: float = 0.01,
    outlier_factor: tuple[float, float] = (1.3, 2.0),
    size_pct: tuple[float, float] = (5.0, 30.0),
    max_steps: int = 3,
    gap: int = MIN_GAP,
) -> History:
    """One benchmark history drawn from `rng` (see the module docstring)."""
    n = int(rng.integers(length[0], length[1] + 1))
    sigma = float(rng.uniform(*noise_pct)) / 100
    steps = step_positions(rng, n, int(rng.integers(0, max_steps + 1)), gap)
    sizes = [float(rng.uniform(*size_pct)) * float(rng.choice([-1.0, 1.0])) for _ in steps]
    level = np.full(n, 10 ** float(rng.uniform(-1, 3)))
    for at, size in zip(steps, sizes, strict=True):
        level[at:] *= 1 + size / 100
    values = level * (1 + sigma * rng.standard_normal(n))
    outliers = rng.random(n) < outlier_rate
    values[outliers] *= rng.uniform(*outlier_factor, size=int(outliers.sum()))
    return History(values, tuple(steps), tuple(sizes), sigma * 100)


def histories(seed: int = SEED, count: int = HISTORIES) -> list[History]:
    """`count` histories from one fixed seed: the same list on every run."""
    rng = np.random.default_rng(seed)
    return [history(rng) for _ in range(count)]


def score(cases: Sequence[History], detector: Detector) -> Score:
    """Run `detector` on every history and match its changes to the planted steps."""
    found: list[Found] = []
    missed: list[tuple[float, float]] = []
    false_alarms = 0
    seconds = 0.0
    for case in cases:
        started = time.perf_counter()
        changes = detector(case.values)
        seconds += time.perf_counter() - started
        by_index = {c.index: c for c in changes}
        used = matches(case.steps, by_index, MARGIN)
        false_alarms += len(changes) - len(used)
        for at, size in zip(case.steps, case.sizes_pct, strict=True):
            if at not in used:
                missed.append((size, case.noise_pct))
                continue
            change = by_index[used[at]]
            covered = (
                change.pct_low is not None
                and change.pct_high is not None
                and change.pct_low <= size <= change.pct_high
            )
            located = change.index_low <= at <= change.index_high
            found.append(Found(size, case.noise_pct, abs(change.index - at), covered, located))
    return Score(
        histories=len(cases),
        points=sum(len(c.values) for c in cases),
        planted=sum(len(c.steps) for c in cases),
        found=tuple(found),
        missed=tuple(missed),
        false_alarms=false_alarms,
        seconds=seconds,
    )


def met(result: Score) -> bool:
    return result.recall >= GOAL_RECALL and result.false_per_500 <= GOAL_FALSE_PER_500


def report(name: str, result: Score) -> str:
    bins = "  ".join(f"{lo:g}-{hi:g}%: {result.recall_of(lo, hi):.3f}" for lo, hi in SIZE_BINS)
    return (
        f"{name:9} recall {result.recall:.3f} ({len(result.found)}/{result.planted})  "
        f"false alarms {result.false_alarms} = {result.false_per_500:.3f} per 500 points  "
        f"({result.seconds:.2f} s)\n"
        f"{'':9} recall by size {bins}\n"
        f"{'':9} of the found steps: size CI holds the planted size {result.coverage:.3f}, "
        f"index range holds the planted index {result.located:.3f}, "
        f"mean location error {result.mean_error:.2f} points"
    )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=SEED, help=f"default {SEED}")
    parser.add_argument(
        "--histories", type=int, default=HISTORIES, help=f"how many (default {HISTORIES})"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless the default detector ({DEFAULT_DETECTOR}) has recall >= "
        f"{GOAL_RECALL} and at most {GOAL_FALSE_PER_500:g} false alarm per 500 points",
    )
    args = parser.parse_args(argv)
    if args.histories < 1:
        parser.error("--histories must be at least 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cases = histories(args.seed, args.histories)
    planted = sum(len(c.steps) for c in cases)
    points = sum(len(c.values) for c in cases)
    print(
        f"{len(cases)} histories (seed {args.seed}), {points} points, {planted} planted steps; "
        f"a step is found by a change within {MARGIN} points"
    )
    results = {name: score(cases, detector) for name, detector in DETECTORS.items()}
    for name, result in results.items():
        print(report(name, result))
    default = results[DEFAULT_DETECTOR]
    verdict = "met" if met(default) else "MISSED"
    print(
        f"goal for {DEFAULT_DETECTOR} (the default of `dtf trends`): recall >= {GOAL_RECALL} "
        f"and <= {GOAL_FALSE_PER_500:g} false alarm per 500 points: {verdict}"
    )
    return 1 if args.check and not met(default) else 0


if __name__ == "__main__":
    sys.exit(main())
