"""Where the repository and the test data are, for tests at any depth of the tree."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TESTS = ROOT / "tests"
SAMPLE_SUITE = TESTS / "sample_suite"
SAMPLE_CRASH = TESTS / "sample_crash"
# A log a real coordinator and its workers wrote (regenerate: python tests/fixtures/make_events.py).
EVENTS_FIXTURE = TESTS / "fixtures" / "events.jsonl"
