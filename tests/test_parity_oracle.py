"""The one parity rule (``bundler.parity``), which the build and every parity test use."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bundler.parity import (
    RELATIVE_TOLERANCE,
    TOLERANCE,
    compare,
    compare_arrays,
    disagreeing,
)

INF, NAN = math.inf, math.nan


@pytest.mark.parametrize(
    ("ours", "theirs", "differ"),
    [
        (NAN, NAN, False),  # missing on both sides
        (NAN, 0.0, True),
        (0.0, NAN, True),
        (INF, INF, False),
        (-INF, -INF, False),
        (INF, -INF, True),
        (INF, 1e308, True),
        (1e308, INF, True),  # the relative bar of an infinity does not absorb it
        (NAN, INF, True),
        (0.5, 0.5 + TOLERANCE * 0.999, False),
        (0.5, 0.5 + TOLERANCE * 1.001, True),
        (-0.0, 0.0, False),
        (1e6, 1e6 * (1 + RELATIVE_TOLERANCE * 0.9), False),  # documented BLAS limit
        (1e6, 1e6 * (1 + RELATIVE_TOLERANCE * 2), True),
        (1.0, 1.0 + 2e-9, True),  # below 1e3 the bar stays absolute
    ],
)
def test_rule(ours: float, theirs: float, differ: bool) -> None:
    assert bool(disagreeing(np.array([ours]), np.array([theirs]))[0]) is differ


def test_compare_arrays_names_rows_and_worst_difference() -> None:
    ours = np.array([[0.2, 0.8], [NAN, 1.0], [0.5, 0.5], [INF, 0.0]])
    theirs = np.array([[0.2, 0.8], [0.0, 1.0], [0.5, 0.5 + 1e-6], [INF, 0.0]])
    result = compare_arrays(ours, theirs, what="probabilities", first_row=10)
    assert result.bad_rows.tolist() == [1, 2]
    assert result.max_abs_diff == pytest.approx(1e-6)
    assert result.problems[0] == "row 11: probabilities [nan, 1.0], scikit-learn [0.0, 1.0]"
    assert result.problems[1].startswith("row 12: probabilities [0.5, 0.5]")
    shape = compare_arrays(ours, theirs[:, :1], what="x")
    assert shape.problems == ("x: shape (4, 2), scikit-learn (4, 1)",)


class FakeScores:
    """What :func:`compare` reads of ``mlbundle_runtime.scorer.Scores``."""

    def __init__(self, task, labels=None, proba=None, values=None):
        self.task, self._labels, self.proba, self.values = task, labels, proba, values

    def __len__(self) -> int:
        return len(self._labels if self._labels is not None else self.values)

    def labels(self) -> list:
        return list(self._labels)


def test_compare_labels_probabilities_and_lengths() -> None:
    proba = np.array([[0.1, 0.9], [0.7, 0.3]])
    ok = compare(FakeScores("classification", ["b", "a"], proba), np.array(["b", "a"]), proba)
    assert ok.passed and ok.max_abs_diff == 0.0
    labels = compare(FakeScores("classification", ["b", "b"], proba), np.array(["b", "a"]), proba)
    assert labels.label_mismatches == 1 and labels.problems == (
        "row 1: label 'b', scikit-learn 'a'",
    )
    missing = compare(FakeScores("classification", ["b", "a"]), np.array(["b", "a"]), proba)
    assert missing.problems == ("the plan gives no probabilities; scikit-learn does",)
    short = compare(FakeScores("classification", ["b"], proba[:1]), np.array(["b", "a"]), proba)
    assert short.problems == ("1 rows scored, scikit-learn scored 2",)


def test_compare_regression_values_with_nan_and_infinity() -> None:
    want = np.array([1.0, NAN, INF, 3.0])
    assert compare(FakeScores("regression", values=want.copy()), want, None).passed
    got = np.array([1.0, 0.0, INF, -INF])
    report = compare(FakeScores("regression", values=got), want, None, first_row=5)
    assert report.problems == (
        "row 6: value 0.0, scikit-learn nan",
        "row 8: value -inf, scikit-learn 3.0",
    )
