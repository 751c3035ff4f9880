"""KMeans and MiniBatchKMeans compile: labels exactly, distances within the parity bar.

As the model, the plan's labels must equal ``predict`` and its ``transform`` extra
``transform`` (within 1e-9; measured: a few 1e-15, BLAS sums the dot products in its
own order). As a step, the distances feed the next estimator. NaN and infinity are
refused as ``validate_data`` refuses them; ties go to the first center, as in
scikit-learn.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeRegressor

from bundler import parity
from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    to_records,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def data(d: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(d)
    X = np.concatenate([rng.normal(loc=c, size=(80, d)) for c in (-3.0, 0.0, 2.5, 6.0)])
    y = X @ rng.normal(size=d) + rng.normal(size=len(X))
    return X, y


MODELS = {
    "KMeans(4)": lambda: KMeans(4, random_state=0, n_init=3),
    "KMeans(7,elkan)": lambda: KMeans(7, random_state=1, n_init=2, algorithm="elkan"),
    "MiniBatchKMeans(5)": lambda: MiniBatchKMeans(5, random_state=0, n_init=3),
}


def probes(X: np.ndarray) -> np.ndarray:
    rows = [X[:5] * 0.0, X[:5] * 1e3, -X[:5] * 1e150, X[:5] + 1e-300]
    return np.concatenate(rows)


def worst(model: Any, X: np.ndarray) -> float:
    scorer = compile_scorer(model)
    report = parity.compare_with_model(scorer.score_records(to_records(scorer, X)), model, X)
    assert not report.problems, report.problems
    return report.max_abs_diff


@pytest.mark.parametrize("d", [3, 11, 20])
@pytest.mark.parametrize("kind", list(MODELS))
def test_clusterer_as_the_model(kind: str, d: int) -> None:
    X, _ = data(d)
    model = MODELS[kind]().fit(X)
    scorer = compile_scorer(model)
    assert scorer.plan.output.classes == tuple(range(model.n_clusters))
    assert_parity(model, None, X, scorer=scorer)
    assert worst(model, X) <= 1e-13  # measured: at most 1.4e-14 (transform)
    for context, block in (("probes", probes(X)),):
        assert_same_outcome(model, None, block, scorer=scorer, context=context)


@pytest.mark.parametrize("kind", list(MODELS))
def test_clusterer_at_the_end_of_a_pipeline_and_as_a_step(kind: str) -> None:
    X, y = data(6)
    model = make_pipeline(StandardScaler(), MODELS[kind]()).fit(X)
    assert worst(model, X) <= 1e-13
    step = make_pipeline(StandardScaler(), MODELS[kind](), LogisticRegression()).fit(X, y > 0)
    assert worst(step, X) <= 1e-12
    tree = make_pipeline(MODELS[kind](), DecisionTreeRegressor(random_state=0)).fit(X, y)
    assert_parity(tree, None, X)


def test_nan_and_infinity_are_refused() -> None:
    X, _ = data(3)
    model = KMeans(4, random_state=0, n_init=2).fit(X)
    scorer = compile_scorer(model)
    for v in (math.nan, math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 2] = v
        assert_refused(model, None, block, scorer=scorer)


def test_label_ties_go_to_the_first_center() -> None:
    model = KMeans(2, random_state=0, n_init=1).fit(np.array([[-1.0, 0.0], [1.0, 0.0]] * 5))
    scorer = compile_scorer(model)
    block = np.array([[0.0, 0.0], [0.0, 5.0], [0.0, -3.0]])
    assert len(set(np.abs(model.transform(block)[:, 0] - model.transform(block)[:, 1]))) == 1
    assert_parity(model, None, block, scorer=scorer)
    assert list(scorer.score_records(to_records(scorer, block)).labels()) == list(
        model.predict(block)
    )


def test_float32_features_are_refused() -> None:
    X, _ = data(3)
    model = KMeans(3, random_state=0, n_init=2).fit(X.astype(np.float32))
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_estimators(model)
