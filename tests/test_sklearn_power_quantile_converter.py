"""PowerTransformer and QuantileTransformer compile to ``transform``'s arithmetic.

QuantileTransformer is bit for bit: ``numpy.interp`` forwards and backwards, averaged,
then the bounds; with normal output then its 1e-7 bounds, Cephes' ``ndtri`` (checked
against ``scipy.special.ndtri`` on over 10^6 probabilities, every range's edges, bit for
bit) and the clip. PowerTransformer's Box-Cox is bit for bit;
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
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import ndtri
from scipy.stats import norm
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import PowerTransformer, QuantileTransformer
from sklearn.preprocessing._data import BOUNDS_THRESHOLD
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import (
    assert_parity,
    assert_probes_catch,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    kernels,
    mutated,
)
from tests._transform_parity import (
    assert_features_identical,
    bits_differ,
    dense,
    model_columns,
    run_ops,
    ulp_steps,
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


def ndtri_kernel(u: np.ndarray) -> np.ndarray:
    """``quantile_normal`` on values ``u`` whose inputs are inside the quantiles, unclipped:
    the kernel's ``ndtri`` alone."""
    ws = np.zeros((len(u), 3))
    ws[:, 1] = u
    inf = np.array([np.inf])
    kernels().quantile_normal(ws, np.array([0, 1]), np.array([2]), -inf, inf, -inf, inf)
    return ws[:, 2]


def assert_bits_equal(ours: np.ndarray, theirs: np.ndarray, u: np.ndarray) -> None:
    bad = np.flatnonzero(bits_differ(ours, theirs))
    assert bad.size == 0, (
        f"{bad.size} values differ, e.g. ndtri({u[bad[0]]!r}) = {ours[bad[0]]!r}, "
        f"scipy {theirs[bad[0]]!r}"
    )


def test_ndtri_is_scipys_bit_for_bit() -> None:
    """10^6 uniform values, then each range's edges: near 0 and 1 (down to the smallest
    subnormal), around exp(-2) and 1 - exp(-2) (the central range's ends), exp(-32) (where
    P1/Q1 give way to P2/Q2) and 0.5."""
    rng = np.random.default_rng(0)
    e2, e32 = math.exp(-2), math.exp(-32)
    edges = [5e-324, 1e-300, e2, 1 - e2, e32, 1 - e32, 0.5, 2**-53, 1 - 2**-53]
    u = np.concatenate(
        [
            rng.random(10**6),
            np.exp(-rng.random(10**5) * 744),  # down to 1e-323
            -np.expm1(-rng.random(10**5) * 37),  # up to 1 - 2**-53
            *(c + (rng.random(10**4) - 0.5) * 1e-9 * c for c in (e2, 1 - e2, e32)),
            0.5 + (rng.random(10**4) - 0.5) * 1e-12,
            np.array([x for c in edges for x in ulp_steps(c, 3)]),
        ]
    )
    u = u[(u > 0) & (u < 1)]
    assert len(u) > 10**6
    assert_bits_equal(ndtri_kernel(u), ndtri(u), u)
    bounds = np.array([0.0, 1.0, np.nan])
    assert_bits_equal(ndtri_kernel(bounds), ndtri(bounds), bounds)


@settings(max_examples=300, deadline=None)
@given(st.floats(min_value=5e-324, max_value=1.0, exclude_max=True))
def test_ndtri_on_any_probability(u: float) -> None:
    values = np.array([u])
    assert_bits_equal(ndtri_kernel(values), ndtri(values), values)


def test_bounds_threshold_is_the_kernels() -> None:
    assert BOUNDS_THRESHOLD == 1e-7  # quantile_normal's bounds use the literal 1e-7


@pytest.mark.parametrize("n_quantiles", [5, 50, 1000])
def test_quantile_transformer_normal(n_quantiles: int) -> None:
    X, y = data(False)
    qt = QuantileTransformer(n_quantiles=n_quantiles, output_distribution="normal", subsample=None)
    model = make_pipeline(qt, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, X, scorer, context="training data")
    assert_parity(model, None, X, scorer=scorer)
    q = model[0].quantiles_
    near = np.concatenate([q[:1] - 1e-7, q[-1:] + 1e-7, q[:1] + 1e-7, q[-1:] - 1e-7])
    edges = np.concatenate([q, near, *(np.nextafter(e, d) for e in (q, near) for d in (-1e9, 1e9))])
    P = np.concatenate([probes(X, False), edges])
    finite = P[np.all((np.abs(P) <= 1e30) | np.isnan(P), axis=1)]
    ours = assert_features_identical(model, finite, scorer, context="quantiles and their bounds")
    margin = BOUNDS_THRESHOLD - np.spacing(1)
    assert np.nanmin(ours) == norm.ppf(margin) and np.nanmax(ours) == norm.ppf(1 - margin)
    assert_parity(model, None, finite, scorer=scorer)
    block = X[:3].copy()
    block[0, 1] = -math.inf
    assert_refused(model, None, block, scorer=scorer)


def test_quantile_transformer_normal_before_a_linear_model() -> None:
    """The clip reaches the predictions: a plan clipping lower is caught below the quantiles."""
    X, y = data(False)
    X = np.nan_to_num(X)
    qt = QuantileTransformer(n_quantiles=30, output_distribution="normal")
    model = make_pipeline(qt, LinearRegression()).fit(X, y)
    q = model[0].quantiles_
    P = np.concatenate([X[:20], q - 1.0, q + 1.0])
    wider = mutated(compile_estimators(model), "quantile_normal", 4, lambda lo: lo * 1.5)
    assert_probes_catch(model, P, compile_scorer(model), wider)


def test_quantile_transformer_normal_refuses_a_lost_bound() -> None:
    """A first quantile repeated at 1e10, where ``x - 1e-7 == x``: scikit-learn's value there
    is the interpolation's, which the plan's uniform step replaces by the bound."""
    X, y = data(False)
    X = X.copy()
    X[:40, 2] = 1e10
    X[40:, 2] += 1e10
    qt = QuantileTransformer(n_quantiles=50, output_distribution="normal")
    model = make_pipeline(qt, DecisionTreeRegressor(random_state=0)).fit(X, y)
    assert model[0].quantiles_[0, 2] == model[0].quantiles_[1, 2] == 1e10
    with pytest.raises(UnsupportedEstimatorError, match="x2.*valid:"):
        compile_estimators(model)
