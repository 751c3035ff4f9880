"""SimpleImputer with a missing marker other than NaN: ``""``, ``"?"`` on text, ``-1`` on numbers.

scikit-learn treats a cell as missing when it *equals* the marker (``X == ""``), and
then refuses NaN ("Input contains NaN"). The plan compares category codes: the
marker is a category of the input, so a record giving ``""`` for a categorical input
is missing exactly when scikit-learn's is. Each case compares the imputed features
bit for bit and the predictions on the training rows, each column missing in turn,
all missing, unseen categories and extremes; NaN is refused as scikit-learn refuses it.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.inputs import InputError
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    to_records,
)
from tests._transform_parity import assert_features_identical

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def text_frame(marker: str) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(3)
    n = 240
    df = pd.DataFrame(
        {
            "color": rng.choice(["red", "green", "blue", marker], n, p=[0.4, 0.3, 0.2, 0.1]),
            "size": rng.choice(["S", "M", "L", marker], n, p=[0.3, 0.3, 0.3, 0.1]),
            "shape": rng.choice(["round", "flat", marker], n, p=[0.45, 0.45, 0.1]),
        }
    ).astype(object)
    y = ((df["color"] == "red") ^ (df["size"] == "L")).to_numpy().astype(int)
    return df, y


def text_probes(df: pd.DataFrame, marker: str) -> list[tuple[str, pd.DataFrame]]:
    out = []
    for col in df.columns:
        block = df.iloc[:4].copy()
        block[col] = marker
        out.append((f"{col} missing", block))
    out.append(("all missing", pd.DataFrame([[marker] * df.shape[1]] * 2, columns=df.columns)))
    unseen = df.iloc[:3].copy()
    unseen["color"] = ["purple", "", " red"]
    out.append(("unseen categories", unseen))
    return out


IMPUTERS = {
    "most_frequent": lambda m: SimpleImputer(missing_values=m, strategy="most_frequent"),
    "constant": lambda m: SimpleImputer(missing_values=m, strategy="constant"),
    "constant(other)": lambda m: SimpleImputer(
        missing_values=m, strategy="constant", fill_value="other"
    ),
}


@functools.cache
def fitted_text(kind: str, marker: str) -> tuple[Any, Any]:
    df, y = text_frame(marker)
    model = make_pipeline(
        IMPUTERS[kind](marker), OneHotEncoder(handle_unknown="ignore"), LogisticRegression()
    ).fit(df, y)
    return model, compile_scorer(model)


@pytest.mark.parametrize("marker", ["", "?"])
@pytest.mark.parametrize("kind", list(IMPUTERS))
def test_text_marker_is_missing(kind: str, marker: str) -> None:
    df, _ = text_frame(marker)
    model, scorer = fitted_text(kind, marker)
    assert_features_identical(model, df, scorer, context="training data")
    assert_parity(model, None, df, scorer=scorer)
    for context, block in text_probes(df, marker):
        assert_features_identical(model, block, scorer, context=context)
        assert_parity(model, None, block, scorer=scorer, context=context)


@pytest.mark.parametrize("marker", ["", "?"])
def test_text_marker_nan_is_refused_and_none_too(marker: str) -> None:
    df, _ = text_frame(marker)
    model, scorer = fitted_text("most_frequent", marker)
    block = df.iloc[:3].copy()
    block.iloc[1, 0] = np.nan
    assert_refused(model, None, block, scorer=scorer, match="NaN|null|missing")
    # scikit-learn keeps None as a value (the encoder then ignores it as unknown); the
    # plan reads None as NaN and refuses it: the one place they differ, on the safe side.
    block.iloc[1, 0] = None
    with pytest.raises(InputError):
        scorer.score_records(to_records(scorer, block))


def test_text_marker_with_an_ordinal_encoder_and_mixed_object_data() -> None:
    """A numeric column of object data is only checked for NaN, never for infinity."""
    df, y = text_frame("")
    df = df.copy()
    rng = np.random.RandomState(5)
    df["weight"] = pd.Series(np.round(rng.normal(size=len(df)), 1), dtype=object)
    imputer = SimpleImputer(missing_values="", strategy="most_frequent")
    model = make_pipeline(
        imputer,
        ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    [0, 1, 2],
                ),
                ("num", "passthrough", [3]),
            ]
        ),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)
    assert model[0]._fit_dtype == np.dtype(object)
    scorer = compile_scorer(model)
    assert_features_identical(model, df, scorer, context="training data")
    assert_parity(model, None, df, scorer=scorer)
    for context, block in text_probes(df.iloc[:, :3], ""):
        full = block.copy()
        full["weight"] = df["weight"].iloc[: len(block)].to_numpy()
        assert_parity(model, None, full, scorer=scorer, context=context)
    for v in (math.inf, -math.inf, 1e308, -0.0):
        block = df.iloc[:3].copy()
        block.iloc[1, 3] = v
        # the imputer lets infinity through; the tree then refuses it (float32), both sides
        assert_same_outcome(model, None, block, scorer=scorer, context=f"weight {v}")
    block = df.iloc[:3].copy()
    block.iloc[1, 3] = np.nan
    assert_refused(model, None, block, scorer=scorer)


def test_text_column_missing_in_all_of_training_is_dropped() -> None:
    df, y = text_frame("")
    df = df.copy()
    df["shape"] = ""
    model = make_pipeline(
        SimpleImputer(missing_values="", strategy="most_frequent"),
        OneHotEncoder(handle_unknown="ignore"),
        LogisticRegression(),
    ).fit(df, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, df, scorer)
    assert_parity(model, None, df, scorer=scorer)
    block = df.iloc[:3].copy()
    block["shape"] = ["round", "x", ""]
    assert_parity(model, None, block, scorer=scorer)
    block["shape"] = ["round", np.nan, ""]  # a dropped column is still validated
    assert_refused(model, None, block, scorer=scorer)


@functools.cache
def numeric_marker_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.RandomState(2)
    X = np.round(rng.normal(size=(300, 5)) * 4) / 4
    y = X @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + rng.normal(size=300)
    X[rng.rand(*X.shape) < 0.12] = -1.0
    return X, y


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("marker", [-1.0, -1])
def test_numeric_marker(strategy: str, marker: float) -> None:
    X, y = numeric_marker_data()
    imputer = SimpleImputer(missing_values=marker, strategy=strategy, fill_value=7.5)
    model = make_pipeline(imputer, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, X, scorer, context="training data")
    assert_parity(model, None, X, scorer=scorer)
    for f in range(X.shape[1]):
        block = X[:4].copy()
        block[:, f] = -1.0
        assert_features_identical(model, block, scorer, context=f"x{f} missing")
        assert_parity(model, None, block, scorer=scorer, context=f"x{f} missing")
    for v in (0.0, -0.0, 1e-300, 1e30, -1e30, np.nextafter(-1.0, 0.0)):
        block = X[:3].copy()
        block[1, 0] = v
        assert_features_identical(model, block, scorer, context=f"extreme {v}")
    for v in (math.nan, math.inf, -math.inf):
        block = X[:3].copy()
        block[1, 2] = v
        assert_refused(model, None, block, scorer=scorer)


def test_numeric_marker_on_int_data() -> None:
    X, y = numeric_marker_data()
    Xi = (X * 4).astype(np.int64)
    model = make_pipeline(
        SimpleImputer(missing_values=-4, strategy="most_frequent"),
        DecisionTreeRegressor(random_state=0),
    ).fit(Xi, y)
    scorer = compile_scorer(model)
    assert_features_identical(model, Xi.astype(float), scorer)
    assert_parity(model, None, Xi, scorer=scorer)


@pytest.mark.parametrize(
    "make",
    [
        lambda: SimpleImputer(missing_values="", strategy="most_frequent", add_indicator=True),
        lambda: SimpleImputer(missing_values=None, strategy="most_frequent"),
    ],
    ids=["add_indicator", "None"],
)
def test_refused_options(make: Any) -> None:
    df, y = text_frame("")
    model = make_pipeline(make(), OneHotEncoder(handle_unknown="ignore"), LogisticRegression()).fit(
        df, y
    )
    with pytest.raises(UnsupportedEstimatorError, match="missing_values"):
        compile_estimators(model)
