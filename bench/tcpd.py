"""Score dtf's change-point detector on the Turing Change Point Dataset (TCPD).

Runs `projections.analytics.changepoint.detect` (the `segments` detector) with one fixed
setting (its defaults unless overridden on the command line) on the 25 univariate series in
`../shared/tcpd` (all series except `quality_control_*`, the 2-D `run_log` and
`uk_coal_employ`, which has missing values), scores each with TCPDBench's F1 (margin 5) and
covering against `annotations.json`, and prints a per-series table and the averages beside
the published default binseg, pelt and zero scores
for the same series (van den Burg & Williams, arXiv:2003.06222). The `steps` detector, made
for benchmark histories (`bench/steps.py`), is scored on its defaults beside it.

Run from the repository root:  python -m bench.tcpd [--data DIR] [--check]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from projections.analytics.changepoint import (
    DEFAULT_ALPHA,
    DEFAULT_MIN_SIZE,
    DEFAULT_MODEL,
    DEFAULT_PENALTY_SCALE,
    ChangePoint,
    detect,
)
from projections.analytics.steps import detect_steps
from projections.analytics.tcpd_metrics import clean_predictions, covering, f_measure

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "tcpd"
NOT_SERIES = {"annotations", "schema", "checksums"}
EXCLUDED = {"run_log", "uk_coal_employ"}
EXCLUDED_PREFIX = "quality_control_"
PUBLISHED = ("binseg", "pelt", "zero")
GOAL_F1 = 0.76
GOAL_COVER = 0.69


@dataclass(frozen=True, slots=True)
class SeriesScore:
    """Detector output and scores for one series."""

    name: str
    n_obs: int
    predicted: list[int]
    f1: float
    cover: float


def series_names(data: Path) -> list[str]:
    """The univariate benchmark series present in `data`, sorted."""
    names = (path.stem for path in data.glob("*.json"))
    return sorted(
        name
        for name in names
        if name not in NOT_SERIES | EXCLUDED and not name.startswith(EXCLUDED_PREFIX)
    )


def load_values(data: Path, name: str) -> np.ndarray:
    """The single dimension of one TCPD series as floats."""
    doc = json.loads((data / f"{name}.json").read_text())
    if doc["n_dim"] != 1:
        raise ValueError(f"{name} has {doc['n_dim']} dimensions")
    return np.asarray(doc["series"][0]["raw"], dtype=float)


def score_series(
    name: str,
    values: np.ndarray,
    annotations: dict[str, list[int]],
    settings: dict,
    detector: Callable[..., list[ChangePoint]] = detect,
) -> SeriesScore:
    """Run `detector` with `settings` on one series and score its cleaned predictions."""
    predicted = clean_predictions((cp.index for cp in detector(values, **settings)), len(values))
    return SeriesScore(
        name,
        len(values),
        predicted,
        f_measure(annotations, predicted),
        covering(annotations, predicted, len(values)),
    )


def published_scores(data: Path, metric: str) -> dict[str, dict[str, float | None]]:
    """Published default scores: `{series: {method: score or None on failure}}`."""
    return json.loads((data / "scores" / f"default_{metric}_scores.json").read_text())


def mean_of(values: list[float | None]) -> float:
    """Mean of the scores that exist (a published method may have failed on a series)."""
    present = [v for v in values if v is not None]
    return sum(present) / len(present) if present else float("nan")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="TCPD directory")
    parser.add_argument(
        "--model", choices=("mean_or_linear", "linear", "mean"), default=DEFAULT_MODEL
    )
    parser.add_argument("--penalty-scale", type=float, default=DEFAULT_PENALTY_SCALE)
    parser.add_argument("--min-size", type=int, default=DEFAULT_MIN_SIZE)
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    parser.add_argument(
        "--check",
        action="store_true",
        help=f"exit 1 unless F1 >= {GOAL_F1} and cover >= {GOAL_COVER}",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    data: Path = args.data
    if not (data / "annotations.json").is_file():
        print(f"no TCPD data in {data} (use --data DIR)", file=sys.stderr)
        return 2
    settings = {
        "model": args.model,
        "penalty_scale": args.penalty_scale,
        "min_size": args.min_size,
        "alpha": args.alpha,
    }
    annotations = json.loads((data / "annotations.json").read_text())
    names = series_names(data)
    series = {name: load_values(data, name) for name in names}
    started = time.perf_counter()
    scores = [score_series(name, series[name], annotations[name], settings) for name in names]
    elapsed = time.perf_counter() - started
    f1_pub, cover_pub = published_scores(data, "f1"), published_scores(data, "cover")

    def pub(table: dict[str, dict[str, float | None]], name: str, method: str) -> str:
        value = table.get(name, {}).get(method)
        return "  fail" if value is None else f"{value:6.3f}"

    header = f"{'series':20} {'n':>5} {'cps':>4} {'F1':>6} {'cover':>6}"
    header += "".join(f" {m + ' F1':>9} {m[:4] + ' cov':>8}" for m in PUBLISHED)
    print(f"detector settings: {settings}")
    print(header)
    for s in scores:
        row = f"{s.name:20} {s.n_obs:5d} {len(s.predicted):4d} {s.f1:6.3f} {s.cover:6.3f}"
        row += "".join(
            f" {pub(f1_pub, s.name, m):>9} {pub(cover_pub, s.name, m):>8}" for m in PUBLISHED
        )
        print(row)

    f1 = mean_of([s.f1 for s in scores])
    cover = mean_of([s.cover for s in scores])
    print(f"\naverages over {len(scores)} series (published: default parameters, same series)")
    print(f"{'method':10} {'F1':>6} {'cover':>6}")
    print(f"{'dtf':10} {f1:6.3f} {cover:6.3f}")
    # The steps detector (the default of `dtf trends`) is made for flat benchmark histories,
    # not for these trending economic series; its score is printed so the trade is visible.
    steps = [score_series(n, series[n], annotations[n], {}, detect_steps) for n in names]
    steps_f1, steps_cover = mean_of([s.f1 for s in steps]), mean_of([s.cover for s in steps])
    print(f"{'dtf steps':10} {steps_f1:6.3f} {steps_cover:6.3f}")
    for method in PUBLISHED:
        f1_m = mean_of([f1_pub.get(n, {}).get(method) for n in names])
        cover_m = mean_of([cover_pub.get(n, {}).get(method) for n in names])
        print(f"{method:10} {f1_m:6.3f} {cover_m:6.3f}")
    met = f1 >= GOAL_F1 and cover >= GOAL_COVER
    print(f"goal F1 >= {GOAL_F1} and cover >= {GOAL_COVER}: {'met' if met else 'MISSED'}")
    print(f"detector time: {elapsed:.2f} s for {sum(s.n_obs for s in scores)} points")
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
