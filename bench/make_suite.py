"""Write a synthetic pytest suite for the benchmarks: FILES modules x TESTS tests each.

Tests do a little real work (hashing, a few ms for some) with a fixed seed, so the suite is
the same every time: `python bench/make_suite.py /tmp/suite --files 50 --tests 24`.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

TEMPLATE = """import hashlib

import pytest


@pytest.fixture(scope="module")
def table():
    return [hashlib.sha256(str(i).encode()).hexdigest() for i in range(200)]


@pytest.mark.parametrize("n", range({tests}))
def test_work(n, table):
    rounds = {rounds}[n % {k}]
    digest = b"x"
    for _ in range(rounds):
        digest = hashlib.sha256(digest).digest()
    assert table[n % len(table)]
"""


def write_suite(dest: Path, files: int, tests: int, seed: int = 7) -> int:
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    (dest / "conftest.py").write_text("")
    for f in range(files):
        # Mostly quick tests with a few slower ones, as real suites are (rounds of sha256).
        rounds = [rng.choice([50, 200, 500, 2000, 20000]) for _ in range(7)]
        (dest / f"test_mod{f:03d}.py").write_text(
            TEMPLATE.format(tests=tests, rounds=rounds, k=len(rounds))
        )
    return files * tests


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("dest", type=Path)
    parser.add_argument("--files", type=int, default=50)
    parser.add_argument("--tests", type=int, default=24)
    args = parser.parse_args()
    n = write_suite(args.dest, args.files, args.tests)
    print(f"wrote {n} tests in {args.files} files to {args.dest}")


if __name__ == "__main__":
    main()
