"""PolynomialFeatures compiles to scikit-learn's columns, computed in its order.

scikit-learn multiplies a degree ``d - 1`` block by one input column, so
``x_a * x_b * x_c`` (a <= b <= c) is ``(x_c * x_b) * x_a``; a different
association would change the last bits, which the bit-for-bit comparison of
the transformed features catches (and a DecisionTreeRegressor after it would
eventually split on). NaN and infinity are refused by PolynomialFeatures
itself; products that overflow are refused by the model after it.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, PolynomialFeatures, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from tests._data import dataset
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import (
    assert_features_identical,
    bits_differ,
    model_columns,
    run_ops,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


POLY = {
    "degree=0": {"degree": 0},
    "degree=1": {"degree": 1},
    "degree=2": {"degree": 2},
    "degree=3": {"degree": 3},
    "degree=4,no bias": {"degree": 4, "include_bias": False},
    "degree=3,interaction_only": {"degree": 3, "interaction_only": True},
    "degree=5,interaction_only,no bias": {
        "degree": 5,
        "interaction_only": True,
        "include_bias": False,
    },
    "degree=(2,3)": {"degree": (2, 3)},
    "degree=(2,4),interaction_only,no bias": {
        "degree": (2, 4),
        "interaction_only": True,
        "include_bias": False,
    },
    "degree=(3,3)": {"degree": (3, 3)},
    "degree=(0,2)": {"degree": (0, 2)},
    "degree=(1,1),no bias": {"degree": (1, 1), "include_bias": False},
}


@functools.cache
def fitted(case: str, ds: str) -> tuple[Any, np.ndarray, Any]:
    X, y = dataset(ds)
    model = make_pipeline(
        PolynomialFeatures(**POLY[case]), DecisionTreeRegressor(random_state=0)
    ).fit(X, y)
    return model, X, compile_scorer(model)


@pytest.mark.parametrize("ds", ["diabetes", "scaled"])
@pytest.mark.parametrize("case", list(POLY))
def test_polynomial_features_bit_for_bit(case: str, ds: str) -> None:
    model, X, scorer = fitted(case, ds)
    poly = model[0]
    ours = assert_features_identical(model, X, scorer, context="training data")
    assert ours.shape[1] == poly.n_output_features_
    assert_parity(model, None, X, scorer=scorer)


@pytest.mark.parametrize("case", ["degree=3", "degree=(2,4),interaction_only,no bias"])
def test_polynomial_features_extremes(case: str) -> None:
    model, X, scorer = fitted(case, "scaled")
    for v in (0.0, -0.0, 1e-300, -1e-300, 1e-170, 1e15, 1e100, -1e300, 5e-324):
        rows = X[:3].copy()
        rows[1, :] = v
        rows[2, 1] = v
        if assert_same_outcome(model, None, rows, scorer=scorer, context=f"value {v!r}"):
            assert_features_identical(model, rows, scorer, context=f"value {v!r}")
    for v in (math.nan, math.inf, -math.inf):
        rows = X[:3].copy()
        rows[2, 3] = v
        err = assert_refused(model, None, rows, scorer=scorer)
        assert "PolynomialFeatures" in str(err) and "'x3'" in str(err)


def test_multiplication_order_matters() -> None:
    """A plain ``X[:, comb].prod(1)`` differs from scikit-learn in the last bit somewhere."""
    model, X, scorer = fitted("degree=4,no bias", "diabetes")
    ours = run_ops(scorer, X)[:, model_columns(scorer)]
    naive = np.column_stack(
        [np.prod(X[:, np.repeat(np.arange(X.shape[1]), p)], axis=1) for p in model[0].powers_]
    )
    assert bits_differ(ours, naive).any()
    assert not bits_differ(ours, model[0].transform(X)).any()


def test_names_follow_powers() -> None:
    model, _, _ = fitted("degree=3,interaction_only", "scaled")
    compiled = compile_estimators(model)
    powers = model[0].powers_
    names = compiled.header["columns"]
    # every multi-factor term gets a readable name, in powers_ order
    want = [" ".join(f"x{j}" for j, e in enumerate(p) if e) for p in powers if p.sum() >= 2]
    assert [n for n in names if " " in n] == want


def test_polynomial_after_scaler_into_logistic_regression() -> None:
    X, y = dataset("diabetes")
    model = make_pipeline(
        StandardScaler(), PolynomialFeatures(3), LogisticRegression(max_iter=2000)
    ).fit(X, y > np.median(y))
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert_features_identical(model, X, scorer)
    for combo in itertools.islice(itertools.combinations(range(X.shape[1]), 2), 6):
        rows = X[:4].copy()
        rows[:, list(combo)] = [[0.0, 1e200], [1e200, 1e200], [-1e160, 1e160], [1.0, -0.0]]
        assert_same_outcome(model, None, rows, scorer=scorer, context=str(combo))


CODES = [f"k{i}" for i in range(12)]


def _sparse_model(degree: Any, interaction_only: bool = False) -> tuple[Any, pd.DataFrame]:
    # degree 4 takes scikit-learn's slow CSC path: fewer one-hot columns keep it quick
    codes = CODES[:4] if degree == 4 else CODES
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "code": pd.Series(rng.choice(codes, n), dtype=object),
            "a": rng.randn(n) * 3.0,
            "b": rng.randn(n) + 1.0,
            "c": rng.randn(n),
        }
    )
    y = ((df["a"] * df["b"] > 0) ^ df["code"].isin(codes[:2])).astype(int).to_numpy()
    model = make_pipeline(
        ColumnTransformer(
            [("code", OneHotEncoder(handle_unknown="ignore"), ["code"])],
            remainder="passthrough",
            sparse_threshold=1.0,
        ),
        PolynomialFeatures(degree, interaction_only=interaction_only),
        LogisticRegression(max_iter=1000),
    ).fit(df, y)
    assert model[0].sparse_output_
    return model, df


SPARSE = [(2, False), (2, True), (3, False), (3, True), (4, False), ((3, 3), True)]


@pytest.mark.parametrize(("degree", "interaction_only"), SPARSE)
def test_sparse_input(degree: Any, interaction_only: bool) -> None:
    """Sparse input multiplies in another order (prefix first) and skips zero factors."""
    model, df = _sparse_model(degree, interaction_only)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert_features_identical(model, df, scorer, signed_zeros=False)
    rows = df.head(4).copy()
    rows["code"] = ["never-seen", "k1", "k2", "k3"]
    rows["a"] = [0.0, -0.0, 1e95, -1e-300]
    assert_same_outcome(model, None, rows, scorer=scorer)


def test_sparse_input_never_multiplies_an_overflow_by_zero() -> None:
    """(a * b) overflows to inf, but c = 0: scikit-learn's sparse expansion never forms
    the (a, b, c) product, so it is 0 (a dense product would be inf * 0 = NaN)."""
    model, df = _sparse_model((3, 3), True)
    scorer = compile_scorer(model)
    rows = df.head(2).copy()
    rows["code"] = "never-seen"  # every one-hot column 0
    rows["a"] = 1e200
    rows["b"] = 1e200
    rows["c"] = 0.0
    assert assert_same_outcome(model, None, rows, scorer=scorer)
    assert_features_identical(model, rows, scorer, signed_zeros=False)


def test_sparse_and_dense_orders_differ() -> None:
    """The sparse association gives other bits than the dense one on these rows."""
    model, df = _sparse_model(4)
    poly = model[1]
    Xt = model[0].transform(df)
    assert bits_differ(poly.transform(Xt).toarray(), poly.transform(Xt.toarray())).any()
