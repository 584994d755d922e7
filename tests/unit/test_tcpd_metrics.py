"""TCPDBench's F1 and covering, checked on the known answers in shared/tcpd/README.md."""

from __future__ import annotations

import pytest

from projections.analytics.tcpd_metrics import (
    clean_predictions,
    covering,
    f_measure,
    partition_from_change_points,
    precision_recall,
    true_positives,
)


@pytest.mark.parametrize(
    ("annotations", "predictions", "expected"),
    [
        ({"1": [10, 20], "2": [11, 20], "3": [10], "4": [0, 5]}, [10, 20], 1.0),
        ({"1": [], "2": [10], "3": [50]}, [10], 0.9090909090909091),
        ({"1": [], "2": [10], "3": [50]}, [], 0.8),
    ],
)
def test_f1_known_answers(annotations, predictions, expected):
    assert f_measure(annotations, predictions) == pytest.approx(expected, abs=1e-15)


@pytest.mark.parametrize(
    ("annotations", "predictions", "expected"),
    [
        ({"1": [10, 20], "2": [10], "3": [0, 5]}, [10, 20], 0.7962962962962963),
        ({"1": [], "2": [10], "3": [40]}, [10], 0.7954144620811286),
        ({"1": [], "2": [10], "3": [40]}, [], 0.8189300411522634),
    ],
)
def test_cover_known_answers(annotations, predictions, expected):
    assert covering(annotations, predictions, 45) == pytest.approx(expected, abs=1e-15)


def test_matching_is_one_to_one_and_prefers_the_closest():
    # Two true points compete for one prediction: only one of them can be matched.
    assert true_positives([10, 12], [11]) == {10}
    assert true_positives([10, 13], [12, 14]) == {10, 13}
    assert true_positives([10], [16]) == set()
    assert true_positives([10], [15]) == {10}


def test_precision_counts_the_added_origin():
    precision, recall = precision_recall({"1": [], "2": [10], "3": [50]}, [])
    assert precision == 1.0
    assert recall == pytest.approx((1 + 0.5 + 0.5) / 3)


def test_partition_ignores_points_that_cannot_start_a_segment():
    assert partition_from_change_points([0, 3, 3, 7, 10, 12], 10) == [
        range(0, 3),
        range(3, 7),
        range(7, 10),
    ]
    assert partition_from_change_points([], 4) == [range(0, 4)]


def test_cover_of_perfect_prediction_is_one():
    assert covering({"a": [5, 9]}, [5, 9], 20) == 1.0


def test_clean_predictions_keeps_the_tcpd_range():
    assert clean_predictions([0, 1, 5, 5, 18, 19, 20], 20) == [1, 5, 18]


def test_metrics_need_an_annotator():
    with pytest.raises(ValueError):
        f_measure({}, [1])
    with pytest.raises(ValueError):
        covering({}, [1], 10)
