"""PowerTransformer and QuantileTransformer compile to ``transform``'s arithmetic.

QuantileTransformer (uniform output) is bit for bit: ``numpy.interp`` forwards and
backwards, averaged, then the bounds. PowerTransformer's Box-Cox is bit for bit;
Yeo-Johnson calls numpy's ``log1p``/``expm1``, whose SIMD versions differ from libm's
(the kernels') by an ulp: those features are compared within 1e-12 (measured at most
about 1e-15 after standardizing), the predictions within the parity bar. NaN passes
through; infinity, and values <= 0 under Box-Cox, are refused as scikit-learn refuses them.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer, QuantileTransformer
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import (
    assert_features_identical,
    dense,
    model_columns,
    run_ops,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def data(positive: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(8)
    X = np.column_stack(
        [
            rng.lognormal(0, 1, 400),
            np.round(rng.lognormal(1, 0.5, 400), 1),  # repeated values
            rng.gamma(2.0, 3.0, 400),
            rng.normal(size=400) * (0 if positive else 5),
        ]
    )
    if positive:
        X[:, 3] = rng.uniform(0.5, 2.0, 400)
    y = np.log(np.abs(X[:, 0]) + 1) + X[:, 2] * 0.1
    X[rng.rand(*X.shape) < 0.08] = np.nan
    return X, y


def probes(X: np.ndarray, positive: bool) -> np.ndarray:
    rows = [X[:10] * 1.01, X[:10] * 0.5]
    extremes = [1e-300, 5e-324, 1e30, 1e300, 1.0] + ([] if positive else [0.0, -0.0, -1e300, -3.0])
    for v in extremes:
        block = X[:2].copy()
        block[:, :] = v
        rows.append(block)
    nan_row = X[:1].copy()
    nan_row[:] = np.nan
    rows.append(nan_row)
    return np.concatenate(rows)


def features_close(model: Any, X: np.ndarray, bar: float) -> float:
    scorer = compile_scorer(model)
    ours = run_ops(scorer, X)[:, model_columns(scorer)]
    theirs = dense(model[:-1].transform(X))
    both_nan = np.isnan(ours) & np.isnan(theirs)
    assert np.array_equal(np.isnan(ours), np.isnan(theirs))
    with np.errstate(invalid="ignore"):
        diff = np.where(both_nan | (ours == theirs), 0.0, np.abs(ours - theirs))
    assert diff.max() <= bar, diff.max()
    return float(diff.max())


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("method", ["yeo-johnson", "box-cox"])
def test_power_transformer(method: str, standardize: bool) -> None:
    positive = method == "box-cox"
    X, y = data(positive)
    pt = PowerTransformer(method=method, standardize=standardize)
    model = make_pipeline(pt, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    P = probes(X, positive)
    moderate = P[np.all((np.abs(P) <= 1e30) | np.isnan(P), axis=1)]
    if method == "box-cox":
        assert_features_identical(model, X, scorer, context="training data")
        assert_features_identical(model, moderate, scorer, context="probes")
    else:
        features_close(model, X, 1e-12)
        features_close(model, moderate, 1e-12)
    assert_parity(model, None, X, scorer=scorer)
    for k in range(len(P)):
        assert_same_outcome(model, None, P[k : k + 1], scorer=scorer, context=f"probe {P[k]}")
    for v in (math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 0] = v
        assert_refused(model, None, block, scorer=scorer)
    if positive:
        for v in (0.0, -1.0):
            block = X[:3].copy()
            block[2, 3] = v
            assert_refused(model, None, block, scorer=scorer, match="positive")


def test_power_transformer_before_a_classifier() -> None:
    X, y = data(False)
    Xf = np.nan_to_num(X)
    model = make_pipeline(PowerTransformer(), LogisticRegression()).fit(Xf, y > np.median(y))
    assert_parity(model, None, Xf)
    assert features_close(model, Xf, 1e-12) < 1e-14


@pytest.mark.parametrize("n_quantiles", [5, 50, 1000])
def test_quantile_transformer_uniform(n_quantiles: int) -> None:
    X, y = data(False)
    qt = QuantileTransformer(n_quantiles=n_quantiles, subsample=None)
    model = make_pipeline(qt, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, X, scorer, context="training data")
    assert_parity(model, None, X, scorer=scorer)
    q = model[0].quantiles_
    edges = np.concatenate([q, np.nextafter(q, np.inf), np.nextafter(q, -np.inf)])
    P = np.concatenate([probes(X, False), edges])
    finite = P[np.all((np.abs(P) <= 1e30) | np.isnan(P), axis=1)]
    assert_features_identical(model, finite, scorer, context="quantiles and their neighbours")
    assert_parity(model, None, finite, scorer=scorer)
    block = X[:3].copy()
    block[0, 1] = math.inf
    assert_refused(model, None, block, scorer=scorer)


def test_quantile_transformer_normal_is_refused() -> None:
    X, y = data(False)
    qt = QuantileTransformer(n_quantiles=50, output_distribution="normal")
    model = make_pipeline(qt, DecisionTreeRegressor(random_state=0)).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="normal"):
        compile_estimators(model)
