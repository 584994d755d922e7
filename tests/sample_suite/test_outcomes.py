"""One test for each way pytest can judge a test."""

from __future__ import annotations

import sys

import pytest


def test_passes() -> None:
    assert 1 + 1 == 2


def test_fails_with_message() -> None:
    value = 41
    assert value == 42, "the answer is off by one"


def test_fails_comparison() -> None:
    assert [1, 2, 3] == [1, 2, 4]


@pytest.mark.skip(reason="skipped by marker")
def test_skipped_by_marker() -> None:
    raise AssertionError("never runs")


@pytest.mark.skipif(sys.platform != "nonexistent-os", reason="skipif condition holds")
def test_skipped_by_skipif() -> None:
    raise AssertionError("never runs")


def test_skipped_imperatively() -> None:
    pytest.skip("skipped from inside the test")


@pytest.mark.xfail(reason="known bug")
def test_xfail_failing() -> None:
    raise ValueError("still broken")


@pytest.mark.xfail(reason="fixed already")
def test_xpass_non_strict() -> None:
    assert True


@pytest.mark.xfail(reason="must fail", strict=True)
def test_xpass_strict() -> None:
    assert True


@pytest.mark.xfail(run=False, reason="would hang")
def test_xfail_not_run() -> None:
    raise AssertionError("never runs")


def test_xfail_imperatively() -> None:
    pytest.xfail("decided at run time")


def test_error_in_fixture_setup(broken_setup: None) -> None:
    raise AssertionError("never runs")


def test_error_in_fixture_teardown(broken_teardown: None) -> None:
    assert True


def test_fails_and_teardown_errors(broken_teardown: None) -> None:
    raise AssertionError("call failed too")


def test_prints(capsys: pytest.CaptureFixture[str]) -> None:
    print("to stdout")
    print("to stderr", file=sys.stderr)
    assert capsys.readouterr().out == "to stdout\n"


def test_prints_then_fails() -> None:
    print("context printed before failing")
    raise AssertionError("failed after printing")
