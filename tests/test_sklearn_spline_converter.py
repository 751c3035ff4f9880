"""SplineTransformer compiles to scipy's B-spline basis, bit for bit.

Every degree, knot placement and kept extrapolation (continue, error, constant) is
compared with ``transform`` on the training rows, at every knot and its float64
neighbours, and beyond the knots; NaN and infinity are refused with
``handle_missing="error"``, NaN encodes as zeros with ``"zeros"``; ``"error"``
extrapolation refuses values beyond the knots as scikit-learn does.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LinearRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import SplineTransformer
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import assert_features_identical

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(6)
    X = np.column_stack([rng.normal(size=300) * 3, rng.uniform(0, 10, 300), rng.gamma(2, 2, 300)])
    return X, np.sin(X[:, 0]) + np.log1p(X[:, 2]) + rng.normal(scale=0.1, size=300)


def knot_probes(model: Any) -> np.ndarray:
    X, _ = data()
    rows = []
    for f, spl in enumerate(model[0].bsplines_):
        for v in np.concatenate([spl.t, np.nextafter(spl.t, np.inf), np.nextafter(spl.t, -np.inf)]):
            row = X[f].copy()
            row[f] = v
            rows.append(row)
    return np.array(rows)


def inside(model: Any, P: np.ndarray) -> np.ndarray:
    spls = model[0].bsplines_
    ok = np.ones(len(P), dtype=bool)
    for f, spl in enumerate(spls):
        ok &= (P[:, f] >= spl.t[spl.k]) & (P[:, f] <= spl.t[-spl.k - 1])
    return P[ok]


@pytest.mark.parametrize("extrapolation", ["continue", "error", "constant"])
@pytest.mark.parametrize("knots", ["uniform", "quantile"])
@pytest.mark.parametrize("degree, n_knots", [(1, 4), (2, 5), (3, 6), (4, 9)])
def test_spline_transformer(degree: int, n_knots: int, knots: str, extrapolation: str) -> None:
    X, y = data()
    spline = SplineTransformer(
        degree=degree, n_knots=n_knots, knots=knots, extrapolation=extrapolation
    )
    model = make_pipeline(spline, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, X, scorer, context="training data")
    assert_parity(model, None, X, scorer=scorer)
    P = knot_probes(model)
    beyond = np.concatenate([X[:3] * 10, X[:3] * -10, X[:3] + 1e3])
    if extrapolation == "error":
        assert_features_identical(model, inside(model, P), scorer, context="knots")
        assert_refused(model, None, beyond[:1], scorer=scorer, match="knots")
    else:
        assert_features_identical(model, np.concatenate([P, beyond]), scorer, context="knots")
    for v in (math.nan, math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 0] = v
        assert_refused(model, None, block, scorer=scorer)


@pytest.mark.parametrize("extrapolation", ["continue", "constant"])
def test_spline_without_bias_and_missing_as_zeros(extrapolation: str) -> None:
    X, y = data()
    Xn = X.copy()
    Xn[::7, 1] = np.nan
    spline = SplineTransformer(
        n_knots=5, include_bias=False, handle_missing="zeros", extrapolation=extrapolation
    )
    model = make_pipeline(spline, DecisionTreeRegressor(random_state=0)).fit(Xn, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, Xn, scorer, context="training data with NaN")
    assert_parity(model, None, Xn, scorer=scorer)
    assert_same_outcome(model, None, np.array([[np.inf, 1.0, 2.0]]), scorer=scorer)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SplineTransformer(extrapolation="periodic"),
        lambda: SplineTransformer(extrapolation="linear"),
        lambda: SplineTransformer(sparse_output=True),
    ],
    ids=["periodic", "linear", "sparse"],
)
def test_refused(make: Any) -> None:
    X, y = data()
    model = make_pipeline(make(), LinearRegression()).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match="extrapolation"):
        compile_estimators(model)
