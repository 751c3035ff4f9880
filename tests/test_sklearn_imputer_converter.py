"""SimpleImputer compiles to exactly what ``transform`` returns, for every strategy.

Numeric columns (float, float32- and int-fitted), string columns and mixed
object data; ``keep_empty_features`` (a column missing in all of training is
dropped, or filled with 0 / ``fill_value``); ``add_indicator``; sparse input.
Each case compares the imputed features bit for bit and the predictions, on
the training rows, with each column missing in turn, an all-missing row,
unseen categories and extreme values; infinity is refused where scikit-learn
refuses it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.datasets import load_diabetes, make_regression
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import assert_features_identical

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def numeric_data(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "diabetes":
        X, y = load_diabetes(return_X_y=True)
    else:
        X, y = make_regression(300, 6, n_informative=5, noise=3.0, random_state=7)
        X = np.round(X * 4) / 4  # repeated values: most_frequent has ties and winners
    rng = np.random.RandomState(1)
    X = X.copy()
    X[rng.rand(*X.shape) < 0.15] = np.nan
    X[:, 2] = np.nan  # missing in all of training
    return X, y


def numeric_probes(X: np.ndarray) -> list[tuple[str, np.ndarray]]:
    out = []
    for f in range(X.shape[1]):
        block = X[:5].copy()
        block[:, f] = np.nan
        out.append((f"x{f} missing", block))
    out.append(("all missing", np.full((2, X.shape[1]), np.nan)))
    for v in (0.0, -0.0, 1e-300, 1e300, -1e300, math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 0] = v
        block[2, 2] = v
        out.append((f"value {v!r}", block))
    return out


def check_numeric(model: Any, X: np.ndarray) -> None:
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert_features_identical(model, X, scorer, context="training data")
    for name, rows in numeric_probes(X):
        if assert_same_outcome(model, None, rows, scorer=scorer, context=name):
            assert_features_identical(model, rows, scorer, context=name)


NUMERIC = {
    "mean": {"strategy": "mean"},
    "median": {"strategy": "median"},
    "most_frequent": {"strategy": "most_frequent"},
    "constant": {"strategy": "constant"},
    "constant=-999.5": {"strategy": "constant", "fill_value": -999.5},
    "callable": {"strategy": lambda v: float(np.max(v)) if v.size else np.nan},
}


@pytest.mark.parametrize("indicator", [False, True], ids=["", "add_indicator"])
@pytest.mark.parametrize("keep_empty", [False, True], ids=["drop_empty", "keep_empty"])
@pytest.mark.parametrize("strategy", list(NUMERIC))
@pytest.mark.parametrize("ds", ["diabetes", "regression"])
def test_numeric_strategies(ds: str, strategy: str, keep_empty: bool, indicator: bool) -> None:
    X, y = numeric_data(ds)
    imputer = SimpleImputer(
        keep_empty_features=keep_empty, add_indicator=indicator, **NUMERIC[strategy]
    )
    model = make_pipeline(imputer, DecisionTreeRegressor(random_state=0)).fit(X, y)
    expected = X.shape[1] - (0 if keep_empty else 1) + (X.shape[1] if indicator else 0)
    assert model[-1].n_features_in_ == expected
    check_numeric(model, X)


def test_numeric_refuses_infinity_naming_the_imputer() -> None:
    X, y = numeric_data("diabetes")
    model = make_pipeline(SimpleImputer(), DecisionTreeRegressor(random_state=0)).fit(X, y)
    rows = X[:3].copy()
    rows[1, 4] = -math.inf
    err = assert_refused(model, None, rows)
    assert "SimpleImputer" in str(err) and "'x4'" in str(err) and "record 2" in str(err)


def test_float32_fitted_statistics_are_cast() -> None:
    """Fitted on float32, the statistics are float32; float64 input gets float32 fills."""
    X, y = numeric_data("diabetes")
    model = make_pipeline(SimpleImputer(strategy="mean"), DecisionTreeRegressor(random_state=0))
    model.fit(X.astype(np.float32), y)
    assert model[0]._fit_dtype == np.float32
    check_numeric(model, X)


@pytest.mark.parametrize("strategy", ["most_frequent", "constant"])
def test_int_fitted_statistics_are_cast(strategy: str) -> None:
    rng = np.random.RandomState(0)
    Xi = rng.randint(-3, 4, size=(200, 3))
    y = Xi @ np.array([1.0, -2.0, 0.5])
    kwargs = {"fill_value": 7} if strategy == "constant" else {}
    model = make_pipeline(
        SimpleImputer(strategy=strategy, **kwargs), DecisionTreeRegressor(random_state=0)
    ).fit(Xi, y)
    assert model[0]._fit_dtype.kind == "i"
    X = Xi.astype(float)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    check_numeric(model, X)


# -- strings and mixed object data -------------------------------------------------------

COLORS = ["red", "green", "blue"]
SIZES = ["S", "M", "L"]


@functools.cache
def _mixed() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "color": pd.Series(rng.choice(COLORS, n, p=[0.5, 0.3, 0.2]), dtype=object),
            "a": np.round(rng.randn(n), 1),
            "size": pd.Series(rng.choice(SIZES, n), dtype=object),
            "b": rng.randn(n) * 10,
        }
    )
    y = (df["a"] + (df["color"] == "red") + (df["size"] == "L") * df["b"] / 10).to_numpy()
    for c in df.columns:
        df.loc[rng.rand(n) < 0.15, c] = np.nan
    df["color"] = df["color"].astype(object)
    df["size"] = df["size"].astype(object)
    return df, y


def mixed() -> tuple[pd.DataFrame, np.ndarray]:
    df, y = _mixed()
    return df.copy(), y


def mixed_probes(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for c in df.columns:
        block = df.head(5).copy()
        block[c] = np.nan
        for k in ("color", "size"):
            block[k] = block[k].astype(object)
        out.append((f"{c} missing", block))
    empty = df.head(2).copy()
    empty.loc[:, :] = np.nan
    for k in ("color", "size"):
        empty[k] = empty[k].astype(object)
    out.append(("all missing", empty))
    unseen = df.head(3).copy()
    unseen["color"] = "purple"
    out.append(("unseen color", unseen))
    for v in (math.inf, 1e300):
        block = df.head(3).copy()
        block.loc[1, "a"] = v
        out.append((f"a={v!r}", block))
    return out


def check_mixed(model: Any) -> None:
    df, _ = mixed()
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert_features_identical(model, df, scorer, context="training data")
    for name, rows in mixed_probes(df):
        if assert_same_outcome(model, None, rows, scorer=scorer, context=name):
            assert_features_identical(model, rows, scorer, context=name)


STRING = {
    "most_frequent": {"strategy": "most_frequent"},
    "constant": {"strategy": "constant"},  # fill_value "missing_value"
    "constant=unk": {"strategy": "constant", "fill_value": "unk"},
}


@pytest.mark.parametrize("indicator", [False, True], ids=["", "add_indicator"])
@pytest.mark.parametrize("keep_empty", [False, True], ids=["drop_empty", "keep_empty"])
@pytest.mark.parametrize("strategy", list(STRING))
def test_string_columns(strategy: str, keep_empty: bool, indicator: bool) -> None:
    df, y = mixed()
    cat = make_pipeline(
        SimpleImputer(keep_empty_features=keep_empty, add_indicator=indicator, **STRING[strategy]),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    model = make_pipeline(
        ColumnTransformer(
            [
                ("cat", cat, ["color", "size"]),
                ("num", SimpleImputer(add_indicator=True), ["a", "b"]),
            ]
        ),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)
    check_mixed(model)


def test_string_constant_fill_is_a_category_of_the_input() -> None:
    df, y = mixed()
    model = make_pipeline(
        ColumnTransformer(
            [
                (
                    "cat",
                    make_pipeline(
                        SimpleImputer(strategy="constant", fill_value="unk"),
                        OneHotEncoder(handle_unknown="error", sparse_output=False),
                    ),
                    ["color", "size"],
                ),
                ("num", SimpleImputer(), ["a", "b"]),
            ]
        ),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)
    compiled = compile_estimators(model)
    assert "unk" in compiled.header["inputs"][0]["categories"]
    check_mixed(model)


def test_mixed_object_imputer_passes_infinity_on() -> None:
    """Fitted on mixed object data, SimpleImputer never checks numbers for infinity;
    the tree after it refuses them (the plan must refuse at the tree too)."""
    df, y = mixed()
    model = Pipeline(
        [
            ("impute", SimpleImputer(strategy="most_frequent", add_indicator=True)),
            (
                "ct",
                ColumnTransformer(
                    [("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False), [0, 2])],
                    remainder="passthrough",
                ),
            ),
            ("tree", DecisionTreeRegressor(random_state=0)),
        ]
    ).fit(df, y)
    assert model[0]._fit_dtype.kind == "O"
    check_mixed(model)
    rows = df.head(3).copy()
    rows.loc[1, "b"] = math.inf
    err = assert_refused(model, None, rows)
    assert "DecisionTreeRegressor" in str(err)


def test_sparse_input() -> None:
    df, y = mixed()
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["color", "size"])],
            remainder="passthrough",
            sparse_threshold=1.0,
        ),
        SimpleImputer(strategy="median", add_indicator=True),
        LogisticRegression(),
    ).fit(df, y > 0.5)
    assert model[0].sparse_output_
    df2 = df.copy()
    df2["color"] = df2["color"].fillna("red")
    df2["size"] = df2["size"].fillna("S")
    scorer = compile_scorer(model)
    assert_parity(model, None, df2, scorer=scorer)
    assert_features_identical(model, df2, scorer, signed_zeros=False)


@pytest.mark.parametrize("missing", [None, pd.NA])
def test_other_missing_values_refused(missing: Any) -> None:
    X = np.array([[1.0, 2.0], [-1.0, 3.0], [4.0, 5.0], [6.0, -1.0]], dtype=object)
    if isinstance(missing, str) or missing is None or missing is pd.NA:
        X = np.array([["a", "b"], ["?", "c"], ["a", "c"], ["b", "?"]], dtype=object)
    imputer = SimpleImputer(missing_values=missing, strategy="most_frequent")
    model = make_pipeline(
        imputer, OneHotEncoder(handle_unknown="ignore"), LogisticRegression()
    ).fit(X, [0, 1, 0, 1])
    with pytest.raises(UnsupportedEstimatorError, match="missing_values"):
        compile_estimators(model)
