"""shields.io endpoint badges (`projections.reports.badges`)."""

from __future__ import annotations

from collections import Counter

from projections.reports import badges


def test_status_colour_follows_the_failures() -> None:
    assert badges.status(Counter(passed=120, skipped=2)) == {
        "schemaVersion": 1,
        "label": "tests",
        "message": "120 passed, 2 skipped",
        "color": "brightgreen",
    }
    assert badges.status(Counter(passed=3, failed=1, error=2))["message"] == (
        "1 failed, 2 errors, 3 passed"
    )
    assert badges.status(Counter(passed=3, failed=1))["color"] == "red"
    assert badges.status(Counter(passed=3, quarantined=1))["color"] == "brightgreen"
    assert badges.status(Counter())["message"] == "no tests"


def test_coverage_steps_and_flaky() -> None:
    colours = [badges.coverage(p)["color"] for p in (95, 80, 65, 45, 10)]
    assert colours == ["brightgreen", "green", "yellowgreen", "yellow", "red"]
    assert badges.coverage(87.46)["message"] == "87%"
    assert badges.flaky(0)["color"] == "brightgreen" and badges.flaky(2)["message"] == "2"


def test_suites_by_directory_below_the_top_one() -> None:
    assert badges.suite_of("tests/unit/test_a.py::t[1]") == "unit"
    assert badges.suite_of("tests/unit/deep/test_a.py::t") == "unit"
    assert badges.suite_of("tests/test_a.py::t") == "tests"
    assert badges.suite_of("test_a.py::t") == "tests"
    found = badges.suites([("tests/unit/a.py::t", "passed"), ("tests/e2e x/b.py::t", "failed")])
    assert set(found) == {"suite-unit.json", "suite-e2e-x.json"}
    assert found["suite-e2e-x.json"]["label"] == "e2e x tests"


def test_all_badges_leave_coverage_out_unless_measured() -> None:
    names = set(badges.all_badges([("tests/a.py::t", "passed")], None, 0))
    assert names == {"tests.json", "suite-tests.json", "flaky.json"}
    assert "coverage.json" in badges.all_badges([], 50.0, 0)
