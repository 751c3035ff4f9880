"""OneHotEncoder and OrdinalEncoder compile to exactly what ``transform`` returns.

The data have skewed categories (so ``min_frequency`` / ``max_categories`` group
some of them), a numeric code column, and NaN in every column. Every case is
scored on the training rows, on rows with one column missing in turn, with
unseen categories and numbers in each column, and with infinity in the numeric
code column: the plan must refuse exactly what scikit-learn refuses, and
otherwise give the same encoded features, bit for bit, and the same predictions.
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
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import assert_features_identical

COLORS = ["red", "green", "blue", "violet", "amber", "teal", "rose"]
COLOR_P = [0.40, 0.25, 0.15, 0.08, 0.06, 0.04, 0.02]
SIZES = ["S", "M", "L", "XL"]
SIZE_P = [0.45, 0.45, 0.07, 0.03]
CODES = [1.0, 2.0, 3.0, 5.0, 8.0]
CODE_P = [0.5, 0.3, 0.1, 0.07, 0.03]
CATS = ["color", "size", "code"]


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


@functools.cache
def _frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 400
    df = pd.DataFrame(
        {
            "color": pd.Series(rng.choice(COLORS, n, p=COLOR_P), dtype=object),
            "x": rng.randn(n),
            "size": pd.Series(rng.choice(SIZES, n, p=SIZE_P), dtype=object),
            "code": rng.choice(CODES, n, p=CODE_P),
        }
    )
    y = (
        df["x"]
        + df["color"].map(dict(zip(COLORS, range(7), strict=True)))
        + df["code"] * (df["size"] == "M")
    ).to_numpy(dtype=float)
    for c in df.columns:
        df.loc[rng.rand(n) < 0.08, c] = np.nan
    df["color"] = df["color"].astype(object)
    df["size"] = df["size"].astype(object)
    return df, y


def frame() -> tuple[pd.DataFrame, np.ndarray]:
    df, y = _frame()
    return df.copy(), y


def probe_rows(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Named blocks of rows: one column missing in turn, unseen values, infinity."""
    out = []
    for c in df.columns:
        block = df.head(6).copy()
        block[c] = np.nan
        for k in CATS[:2]:
            block[k] = block[k].astype(object)
        out.append((f"{c} missing", block))
    for c, value in [("color", "never-seen"), ("size", ""), ("code", 4.0), ("code", -0.0)]:
        block = df.head(4).copy()
        block[c] = value
        out.append((f"{c}={value!r}", block))
    rare = df.head(4).copy()
    rare["color"] = ["rose", "teal", "amber", "violet"]
    rare["size"] = ["XL", "L", "XL", "L"]
    rare["code"] = [8.0, 5.0, 8.0, 3.0]
    out.append(("rare categories", rare))
    for v in (math.inf, -math.inf):
        block = df.head(3).copy()
        block.loc[1, "code"] = v
        out.append((f"code={v}", block))
    return out


def check_all(model: Any, scorer: Any | None = None) -> None:
    df, _ = frame()
    scorer = scorer or compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert_features_identical(model, df, scorer, context="training data")
    for name, rows in probe_rows(df):
        if assert_same_outcome(model, None, rows, scorer=scorer, context=name):
            assert_features_identical(model, rows, scorer, context=name)


def encoded(encoder: Any, remainder: str = "passthrough") -> Pipeline:
    df, y = frame()
    return make_pipeline(
        ColumnTransformer([("enc", encoder, CATS)], remainder=remainder),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)


# -- OneHotEncoder ---------------------------------------------------------------------

INFREQUENT = {
    "none": {},
    "min_frequency=25": {"min_frequency": 25},
    "min_frequency=0.08": {"min_frequency": 0.08},
    "max_categories=3": {"max_categories": 3},
    "both": {"min_frequency": 10, "max_categories": 4},
    "max_categories=1": {"max_categories": 1},
}


@pytest.mark.parametrize("infrequent", list(INFREQUENT))
@pytest.mark.parametrize("handle_unknown", ["error", "ignore", "infrequent_if_exist", "warn"])
def test_one_hot_infrequent_and_unknown(handle_unknown: str, infrequent: str) -> None:
    enc = OneHotEncoder(
        handle_unknown=handle_unknown, sparse_output=False, **INFREQUENT[infrequent]
    )
    model = encoded(enc)
    if infrequent != "none":
        assert any(
            c is not None for c in model[0].named_transformers_["enc"].infrequent_categories_
        )
    check_all(model)


DROPS = {
    "first": "first",
    "if_binary": "if_binary",
    "explicit": ["green", "M", 2.0],
    "explicit-nan": [np.nan, "S", np.nan],
}


DROP_CASES = [
    (drop, handle_unknown, infrequent)
    for drop in DROPS
    for handle_unknown in ("error", "ignore", "infrequent_if_exist")
    for infrequent in ("none", "min_frequency=25", "max_categories=3")
    # NaN is infrequent under max_categories=3, and an infrequent category cannot be dropped
    if not (drop == "explicit-nan" and infrequent == "max_categories=3")
]


@pytest.mark.parametrize(("drop", "handle_unknown", "infrequent"), DROP_CASES)
def test_one_hot_drop(drop: str, handle_unknown: str, infrequent: str) -> None:
    enc = OneHotEncoder(
        drop=DROPS[drop],
        handle_unknown=handle_unknown,
        sparse_output=False,
        **INFREQUENT[infrequent],
    )
    check_all(encoded(enc))


def test_one_hot_if_binary_after_grouping() -> None:
    """size has two frequent categories: grouped to three, so if_binary keeps it."""
    model = encoded(
        OneHotEncoder(
            drop="if_binary",
            min_frequency=40,
            handle_unknown="infrequent_if_exist",
            sparse_output=False,
        )
    )
    enc = model[0].named_transformers_["enc"]
    assert enc._n_features_outs[1] == 3
    check_all(model)


def test_one_hot_infrequent_group_dropped() -> None:
    """All categories infrequent and drop='first': the one (grouped) column is dropped, so
    known, infrequent and unknown values all encode as zeros."""
    model = encoded(
        OneHotEncoder(
            drop="first",
            max_categories=1,
            handle_unknown="infrequent_if_exist",
            sparse_output=False,
        ),
        remainder="passthrough",
    )
    enc = model[0].named_transformers_["enc"]
    assert list(enc._drop_idx_after_grouping) == [0, 0, 0]
    assert enc._n_features_outs == [0, 0, 0]
    check_all(model)


def test_one_hot_explicit_categories_and_dtype() -> None:
    model = encoded(
        OneHotEncoder(
            categories=[
                COLORS + ["unused"],
                ["L", "M", "S", "XL"],
                [1.0, 2.0, 3.0, 5.0, 8.0, 13.0],
            ],
            handle_unknown="ignore",
            sparse_output=False,
            dtype=np.float32,
        )
    )
    check_all(model)


@pytest.mark.parametrize("handle_unknown", ["ignore", "infrequent_if_exist", "error"])
def test_one_hot_sparse_output_into_logistic_regression(handle_unknown: str) -> None:
    df, y = frame()
    model = make_pipeline(
        ColumnTransformer(
            [("enc", OneHotEncoder(handle_unknown=handle_unknown, min_frequency=20), CATS)],
            remainder="drop",
            sparse_threshold=1.0,
        ),
        LogisticRegression(),
    ).fit(df, y > np.median(y))
    assert model[0].sparse_output_
    check_all(model)


def test_one_hot_numeric_column_refuses_infinity_with_ignore() -> None:
    """``_check_X`` refuses infinity in numeric columns whatever handle_unknown says."""
    model = encoded(OneHotEncoder(handle_unknown="ignore", sparse_output=False))
    df, _ = frame()
    rows = df.head(3).copy()
    rows.loc[2, "code"] = math.inf
    err = assert_refused(model, None, rows)
    assert "'code'" in str(err) and "record 3" in str(err)


def test_one_hot_unknown_message_lists_categories() -> None:
    model = encoded(OneHotEncoder(handle_unknown="error", sparse_output=False))
    df, _ = frame()
    rows = df.head(2).copy()
    rows["size"] = ["M", "XXL"]
    err = assert_refused(model, None, rows)
    assert "unknown category" in str(err) and "'size'" in str(err) and "'XL'" in str(err)


# -- OrdinalEncoder --------------------------------------------------------------------

ORDINAL = {
    "default": {},
    "use_encoded_value=-1": {"handle_unknown": "use_encoded_value", "unknown_value": -1},
    "use_encoded_value=nan": {"handle_unknown": "use_encoded_value", "unknown_value": np.nan},
    "use_encoded_value=99,missing=-7": {
        "handle_unknown": "use_encoded_value",
        "unknown_value": 99,
        "encoded_missing_value": -7,
    },
    "min_frequency=25": {"min_frequency": 25},
    "max_categories=3,unknown=-1,missing=-2": {
        "max_categories": 3,
        "handle_unknown": "use_encoded_value",
        "unknown_value": -1,
        "encoded_missing_value": -2,
    },
    "min_frequency=0.1,max_categories=2": {"min_frequency": 0.1, "max_categories": 2},
    "float32": {"dtype": np.float32, "encoded_missing_value": -1},
    "int64": {
        "dtype": np.int64,
        "encoded_missing_value": -1,
        "handle_unknown": "use_encoded_value",
        "unknown_value": 2**40 + 1,
    },
    "categories": {
        "categories": [
            [*COLORS, "unused", np.nan],
            ["L", "M", "S", "XL", np.nan],
            [1.0, 2.0, 3.0, 5.0, 8.0, 13.0, np.nan],
        ],
        "handle_unknown": "use_encoded_value",
        "unknown_value": -3,
    },
}


@pytest.mark.parametrize("case", list(ORDINAL))
def test_ordinal_encoder(case: str) -> None:
    model = encoded(OrdinalEncoder(**ORDINAL[case]))
    check_all(model)


def test_ordinal_encoder_without_nan_in_training() -> None:
    """NaN not seen in fit is an unknown value: refused, or unknown_value."""
    df, y = frame()
    keep = df[CATS].notna().all(axis=1).to_numpy()
    for kwargs in ({}, {"handle_unknown": "use_encoded_value", "unknown_value": -1}):
        model = make_pipeline(
            ColumnTransformer([("enc", OrdinalEncoder(**kwargs), CATS)], remainder="drop"),
            DecisionTreeRegressor(random_state=0),
        ).fit(df[keep], y[keep])
        scorer = compile_scorer(model)
        assert_parity(model, None, df[keep], scorer=scorer)
        for name, rows in probe_rows(df):
            if assert_same_outcome(model, None, rows, scorer=scorer, context=name):
                assert_features_identical(model, rows, scorer, context=name)


def test_ordinal_encoder_unknown_message() -> None:
    model = encoded(OrdinalEncoder())
    df, _ = frame()
    rows = df.head(2).copy()
    rows["color"] = ["red", "mauve"]
    err = assert_refused(model, None, rows)
    assert "unknown category" in str(err) and "'color'" in str(err) and "record 2" in str(err)


def test_encoders_share_an_input() -> None:
    """Two encoders reading the same column agree on its category codes."""
    df, y = frame()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("oh", OneHotEncoder(handle_unknown="ignore", sparse_output=False), ["color"]),
                ("ord", OrdinalEncoder(), ["color", "size"]),
            ],
            remainder="drop",
        ),
        DecisionTreeRegressor(random_state=0),
    ).fit(df, y)
    compiled = compile_estimators(model)
    assert compiled.header["inputs"][0]["kind"] == "categorical"
    check_all(model)
