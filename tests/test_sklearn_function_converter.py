"""FunctionTransformer with numpy.log1p / log / sqrt / exp / abs, or no function at all.

numpy's answers for invalid inputs are kept (log of a negative number is NaN,
of zero -inf, exp overflows to inf) and scikit-learn does not refuse them; the
model after it may (a tree takes NaN but refuses infinity, LogisticRegression
refuses both). ``validate=True`` refuses NaN and infinity up front. Any other
function is refused at compile time, by name.

``sqrt``, ``abs`` and the identity are correctly rounded: the transformed
features match numpy bit for bit. ``log``, ``log1p`` and ``exp`` go through the
C library, while numpy on an AVX-512 CPU uses its own vectorised code: they may
differ in the last bit (the tests bound that at one ulp, and the predictions
still match).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._data import datasets
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import (
    assert_features_identical,
    dense,
    model_columns,
    run_ops,
)

FUNCS = {
    "log1p": np.log1p,
    "log": np.log,
    "sqrt": np.sqrt,
    "exp": np.exp,
    "abs": np.abs,
    "identity": None,
}
EXACT = {"sqrt", "abs", "identity"}
SPECIAL = [
    -2.0,
    -1.0,
    -0.5,
    -0.0,
    0.0,
    5e-324,
    1e-300,
    0.5,
    1.0,
    3.0,
    700.0,
    710.0,
    -800.0,
    1e300,
    -1e300,
    math.inf,
    -math.inf,
    math.nan,
]


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("function")


def ulps(ours: np.ndarray, theirs: np.ndarray) -> int:
    """Largest distance in float64 steps between matching cells (NaN equals NaN)."""
    a = np.where(np.isnan(ours) & np.isnan(theirs), 0.0, ours)
    b = np.where(np.isnan(ours) & np.isnan(theirs), 0.0, theirs)
    assert np.array_equal(np.isinf(a), np.isinf(b)) and np.array_equal(
        a[np.isinf(a)], b[np.isinf(b)]
    )
    a, b = np.where(np.isinf(a), 0.0, a), np.where(np.isinf(b), 0.0, b)
    assert np.array_equal(np.signbit(a) | (a == 0), np.signbit(b) | (b == 0)) or np.all(
        (a == 0) == (b == 0)
    )
    return int(np.max(np.abs(a.view(np.int64) - b.view(np.int64)), initial=0))


@functools.cache
def fitted(name: str, ds: str, validate: bool) -> tuple[Any, np.ndarray, Any]:
    X, y = dataset(ds)
    Xtrain = X[~np.isnan(X).any(axis=1)] if validate else X
    ytrain = y[~np.isnan(X).any(axis=1)] if validate else y
    if name == "exp" and ds == "wide":
        Xtrain = np.clip(Xtrain, -50, 50)  # keep exp finite for the tree's fit
    model = make_pipeline(
        FunctionTransformer(FUNCS[name], validate=validate), DecisionTreeRegressor(random_state=0)
    ).fit(Xtrain, ytrain)
    return model, Xtrain, compile_scorer(model)


def check_features(name: str, model: Any, X: Any, scorer: Any, context: str) -> None:
    if name in EXACT:
        assert_features_identical(model, X, scorer, context=context)
    else:
        ours = run_ops(scorer, X)[:, model_columns(scorer)]
        assert ulps(ours, dense(model[:-1].transform(X))) <= 1, context


@pytest.mark.parametrize("validate", [False, True], ids=["", "validate"])
@pytest.mark.parametrize("ds", ["diabetes", "wide"])
@pytest.mark.parametrize("name", list(FUNCS))
def test_function_transformer(name: str, ds: str, validate: bool) -> None:
    model, X, scorer = fitted(name, ds, validate)
    assert_parity(model, None, X, scorer=scorer)
    check_features(name, model, X, scorer, "training data")
    for f in (0, X.shape[1] - 1):
        rows = np.repeat(X[:1], len(SPECIAL), axis=0)
        rows[:, f] = SPECIAL
        for k in range(len(SPECIAL)):  # row by row: one refusal must not hide the others
            row = rows[k : k + 1]
            if assert_same_outcome(model, None, row, scorer=scorer, context=f"{SPECIAL[k]!r}"):
                check_features(name, model, row, scorer, f"x{f}={SPECIAL[k]!r}")


def test_validate_refuses_nan_naming_the_transformer() -> None:
    model, X, scorer = fitted("sqrt", "diabetes", True)
    rows = X[:3].copy()
    rows[1, 2] = np.nan
    err = assert_refused(model, None, rows, scorer=scorer)
    assert "FunctionTransformer" in str(err) and "'x2'" in str(err)


@pytest.mark.parametrize("name", ["log", "log1p", "sqrt"])
def test_invalid_results_refused_by_logistic_regression(name: str) -> None:
    X, y = dataset("diabetes")
    Xp = np.abs(X) + 0.01
    model = make_pipeline(FunctionTransformer(FUNCS[name]), LogisticRegression()).fit(
        Xp, y > np.median(y)
    )
    scorer = compile_scorer(model)
    assert_parity(model, None, Xp, scorer=scorer)
    rows = Xp[:3].copy()
    rows[1, 0] = -5.0  # NaN after the function: LogisticRegression refuses it
    err = assert_refused(model, None, rows, scorer=scorer)
    assert "LogisticRegression" in str(err)


def test_one_ulp_differences_exist_but_stay_within_one() -> None:
    """Measure the libm-vs-numpy gap on many values: at most one ulp."""
    rng = np.random.RandomState(0)
    X = np.column_stack([rng.rand(4000) * 10, rng.randn(4000) * 5, rng.rand(4000) * 1e3])
    differing = 0
    for name in ("log", "log1p", "exp"):
        Xf = np.clip(X, -50.0, 50.0) if name == "exp" else X
        model = make_pipeline(FunctionTransformer(FUNCS[name]), DecisionTreeRegressor()).fit(
            Xf, Xf[:, 0]
        )
        scorer = compile_scorer(model)
        ours = run_ops(scorer, Xf)[:, model_columns(scorer)]
        theirs = model[0].transform(Xf)
        assert ulps(ours, theirs) <= 1, name
        differing += int(np.sum(ours != theirs))
    print(f"cells one ulp apart: {differing} of {3 * X.size}")


def _custom(X: Any) -> Any:
    return X * 2


@pytest.mark.parametrize(
    ("func", "shown"),
    [
        (np.square, "square"),
        (np.log2, "log2"),
        (np.expm1, "expm1"),
        (lambda X: X + 1, "<lambda>"),
        (_custom, "_custom"),
        (functools.partial(np.power, 2), "partial"),
    ],
)
def test_other_functions_refused_by_name(func: Any, shown: str) -> None:
    X, y = dataset("diabetes")
    model = make_pipeline(FunctionTransformer(func), DecisionTreeRegressor()).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError) as exc:
        compile_estimators(model)
    message = str(exc.value)
    assert shown in message and "numpy.log1p" in message and "numpy.abs" in message


def test_kw_args_refused() -> None:
    X, y = dataset("diabetes")
    model = make_pipeline(
        FunctionTransformer(np.log1p, kw_args={"where": True}), DecisionTreeRegressor()
    ).fit(np.abs(X), y)
    with pytest.raises(UnsupportedEstimatorError, match="kw_args"):
        compile_estimators(model)


def test_identity_passes_text_through() -> None:
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": pd.Series(rng.choice(["a", "b", "c"], 100), dtype=object)})
    y = (df["c"] == "a").to_numpy()
    model = make_pipeline(
        FunctionTransformer(), OneHotEncoder(handle_unknown="ignore"), LogisticRegression()
    ).fit(df, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert scorer.plan.inputs[0].kind == "categorical"
    rows = pd.DataFrame({"c": pd.Series(["b", "never-seen", np.nan], dtype=object)})
    assert_parity(model, None, rows, scorer=scorer)


def test_float32_features_refused() -> None:
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": pd.Series(rng.choice(["a", "b", "c"], 100), dtype=object)})
    y = (df["c"] == "a").to_numpy()
    model = make_pipeline(
        OneHotEncoder(dtype=np.float32, sparse_output=False),
        FunctionTransformer(np.log1p),
        DecisionTreeRegressor(),
    ).fit(df, y)
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_estimators(model)


def test_sparse_input_refused_for_a_function() -> None:
    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": pd.Series(rng.choice(["a", "b", "c"], 100), dtype=object)})
    model = make_pipeline(
        ColumnTransformer([("oh", OneHotEncoder(), ["c"])], sparse_threshold=1.0),
        FunctionTransformer(np.sqrt),
        StandardScaler(with_mean=False),
        LogisticRegression(),
    )
    model.fit(df, (df["c"] == "a").to_numpy())
    with pytest.raises(UnsupportedEstimatorError, match="sparse"):
        compile_estimators(model)
