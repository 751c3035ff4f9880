"""AdaBoostClassifier (SAMME) and AdaBoostRegressor compile from their members.

The classifier's ``decision_function`` adds, member by member, ``w`` to the predicted
class and ``-w / (K - 1)`` to the others, divides by the weights' sum, and (two
classes) takes ``-p_0 + p_1``; ``predict_proba`` is the softmax of ``[-d, d] / 2`` or
``d / (K - 1)``: labels identical, probabilities and decisions within the parity
bar (measured: 1.1e-16, the softmax's exp). The regressor's weighted median is
exact. ``_check_X`` refuses NaN and infinity even though the member trees accept NaN.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.datasets import make_classification, make_regression
from sklearn.ensemble import AdaBoostClassifier, AdaBoostRegressor
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler import parity
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    threshold_probes,
    to_records,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def classification(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    X, y = make_classification(400, 8, n_informative=5, n_classes=n_classes, random_state=n_classes)
    names = np.array(["ant", "bee", "cat", "dog"])[:n_classes]
    return np.round(X, 2), names[y]


def worst(model: Any, X: np.ndarray) -> float:
    scorer = compile_scorer(model)
    report = parity.compare_with_model(scorer.score_records(to_records(scorer, X)), model, X)
    assert not report.problems, report.problems
    return report.max_abs_diff


def probes(model: Any, X: np.ndarray) -> np.ndarray:
    rows = [threshold_probes(member, X[:10], limit=40) for member in model.estimators_[:10]]
    return np.concatenate(rows)


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("n_classes", [2, 3, 4])
def test_ada_boost_classifier(n_classes: int, depth: int) -> None:
    X, y = classification(n_classes)
    model = AdaBoostClassifier(
        DecisionTreeClassifier(max_depth=depth), n_estimators=40, random_state=0
    ).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert worst(model, X) <= 1e-15
    P = probes(model, X)
    assert len(P) >= 30
    assert_parity(model, None, P, scorer=scorer, context="split probes")
    assert worst(model, P) <= 1e-15
    for v in (1e30, -1e30, 1e300, 0.0, -0.0):
        block = X[:2].copy()
        block[:, 0] = v
        assert_same_outcome(model, None, block, scorer=scorer, context=f"x0 = {v}")
    for v in (math.nan, math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 4] = v
        assert_refused(model, None, block, scorer=scorer)


def test_ada_boost_classifier_learning_rate_and_early_stop() -> None:
    X, y = classification(3)
    model = AdaBoostClassifier(n_estimators=200, learning_rate=0.3, random_state=1).fit(X, y)
    assert_parity(model, None, X)
    assert worst(model, X) <= 1e-15


@pytest.mark.parametrize("loss", ["linear", "square", "exponential"])
@pytest.mark.parametrize("depth", [2, 4])
def test_ada_boost_regressor(loss: str, depth: int) -> None:
    X, y = make_regression(400, 6, noise=5.0, random_state=3)
    X = np.round(X, 2)
    model = AdaBoostRegressor(
        DecisionTreeRegressor(max_depth=depth), n_estimators=30, loss=loss, random_state=0
    ).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert worst(model, X) == 0.0
    P = probes(model, X)
    assert worst(model, P) == 0.0
    for v in (math.nan, math.inf):
        block = X[:3].copy()
        block[0, 1] = v
        assert_refused(model, None, block, scorer=scorer)
