"""Scalers and Normalizer compile to exactly scikit-learn's arithmetic.

Beyond matching predictions (``tests._parity``), every test here compares the
transformed features the final model reads with ``pipeline[:-1].transform``
bit for bit: MinMaxScaler is ``X * scale_ + min_`` (two roundings), dense
scalers divide while sparse ones multiply by the reciprocal, and Normalizer
adds its norms in numpy's order. The final model is a DecisionTreeRegressor
(float32 comparisons: sensitive to the last bit near a split) or a
LogisticRegression (refuses NaN and infinity after the scaler).
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
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    OneHotEncoder,
    RobustScaler,
    StandardScaler,
)
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from tests._data import datasets
from tests._parity import assert_parity, assert_refused, assert_same_outcome, compile_scorer
from tests._transform_parity import (
    assert_features_identical,
    bits_differ,
    dense,
    inverse_probes,
    model_columns,
    run_ops,
)

F32_MAX = float(np.finfo(np.float32).max)


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("scalers")


def with_nan(X: np.ndarray, frac: float = 0.1, seed: int = 0) -> np.ndarray:
    rng = np.random.RandomState(seed)
    out = X.astype(np.float64).copy()
    out[rng.rand(*out.shape) < frac] = np.nan
    return out


# -- per-column scalers ---------------------------------------------------------------

SCALERS = {
    "MinMaxScaler": lambda: MinMaxScaler(),
    "MinMaxScaler(-1,1)": lambda: MinMaxScaler(feature_range=(-1, 1)),
    "MinMaxScaler(-3.5,2.25,clip)": lambda: MinMaxScaler(feature_range=(-3.5, 2.25), clip=True),
    "MinMaxScaler(clip)": lambda: MinMaxScaler(clip=True),
    "MaxAbsScaler": lambda: MaxAbsScaler(),
    "MaxAbsScaler(clip)": lambda: MaxAbsScaler(clip=True),
    "RobustScaler": lambda: RobustScaler(),
    "RobustScaler(no centering)": lambda: RobustScaler(with_centering=False),
    "RobustScaler(no scaling)": lambda: RobustScaler(with_scaling=False),
    "RobustScaler(neither)": lambda: RobustScaler(with_centering=False, with_scaling=False),
    "RobustScaler(10-90,unit_variance)": lambda: RobustScaler(
        quantile_range=(10.0, 90.0), unit_variance=True
    ),
    "StandardScaler": lambda: StandardScaler(),
}
DATASETS = ("diabetes", "regression", "breast_cancer")


@functools.cache
def fitted_scaler(kind: str, ds: str) -> tuple[Any, np.ndarray, Any]:
    X, y = dataset(ds)
    Xn = with_nan(X)
    model = make_pipeline(SCALERS[kind](), DecisionTreeRegressor(random_state=0)).fit(Xn, y)
    return model, Xn, compile_scorer(model)


def _inverse(scaler: Any, n: int):
    def inverse(f: int, v: float) -> float:
        row = np.zeros((1, n))
        row[0, f] = v
        return float(scaler.inverse_transform(row)[0, f])

    return inverse


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("kind", list(SCALERS))
def test_scaler_training_data_and_split_points(kind: str, ds: str) -> None:
    model, Xn, scorer = fitted_scaler(kind, ds)
    X, _ = dataset(ds)
    assert_features_identical(model, Xn, scorer, context="training data with NaN")
    assert_parity(model, None, Xn, scorer=scorer)
    probes = inverse_probes(model[-1], X[:20], _inverse(model[0], X.shape[1]))
    assert len(probes) > 100
    assert_features_identical(model, probes, scorer, context="split probes")
    assert_parity(model, None, probes, scorer=scorer, context="split probes")


@pytest.mark.parametrize("kind", list(SCALERS))
def test_scaler_nan_in_each_feature_and_extremes(kind: str) -> None:
    model, _, scorer = fitted_scaler(kind, "regression")
    X, _ = dataset("regression")
    blocks = []
    for f in range(X.shape[1]):
        block = X[:5].copy()
        block[:, f] = np.nan
        blocks.append(block)
    rows = np.vstack([*blocks, np.full((1, X.shape[1]), np.nan)])
    assert_features_identical(model, rows, scorer, context="NaN rows")
    assert_parity(model, None, rows, scorer=scorer)
    for v in (0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, F32_MAX, 3.5e38, -3.5e38, 5e-324):
        rows = X[:3].copy()
        rows[:, 0] = v
        rows[1, :] = v
        # scaled values may leave float32's range: then the tree refuses them, as scikit-learn
        if assert_same_outcome(model, None, rows, scorer=scorer, context=f"value {v!r}"):
            assert_features_identical(model, rows, scorer, context=f"value {v!r}")
    for v in (math.inf, -math.inf):
        rows = X[:3].copy()
        rows[2, 4] = v
        err = assert_refused(model, None, rows, scorer=scorer)
        assert "record 3" in str(err) and "'x4'" in str(err) and type(model[0]).__name__ in str(err)


@pytest.mark.parametrize("kind", ["MinMaxScaler(clip)", "MaxAbsScaler", "RobustScaler"])
def test_scaler_into_logistic_regression_refuses_nan(kind: str) -> None:
    X, y = dataset("binary")
    model = make_pipeline(SCALERS[kind](), LogisticRegression()).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert_features_identical(model, X, scorer)
    rows = X[:3].copy()
    rows[1, 3] = np.nan
    err = assert_refused(model, None, rows, scorer=scorer)
    assert "LogisticRegression" in str(err) and "'x3'" in str(err)
    rows = X[:3].copy()
    rows[0, 0] = 1e300  # finite for the scaler, maybe infinite after it: same outcome
    assert_same_outcome(model, None, rows, scorer=scorer)


def test_min_max_scaler_is_multiply_then_add() -> None:
    """The probes are sharp: ``(x - data_min_) / data_range_`` would differ somewhere."""
    model, Xn, scorer = fitted_scaler("MinMaxScaler(-1,1)", "regression")
    X, _ = dataset("regression")
    mm = model[0]
    ours = run_ops(scorer, X)[:, model_columns(scorer)]
    lo, hi = mm.feature_range
    other = (X - mm.data_min_) / mm.data_range_ * (hi - lo) + lo
    assert bits_differ(ours, other).any()
    assert not bits_differ(ours, mm.transform(X)).any()


def test_min_max_scaler_clip_bounds_and_zero_range() -> None:
    X, y = dataset("diabetes")
    X = X.copy()
    X[:, 3] = 0.25  # constant column: scale_ from a zero range
    model = make_pipeline(
        MinMaxScaler(feature_range=(-1, 0), clip=True), DecisionTreeRegressor(random_state=0)
    ).fit(X, y)
    scorer = compile_scorer(model)
    rows = X[:6].copy()
    rows[:, 0] = [-1.0, 1.0, -0.0, 0.0, X[:, 0].min(), X[:, 0].max()]
    rows[:, 3] = [0.25, 0.3, -5.0, 1e300, -0.0, np.nan]
    assert_features_identical(model, rows, scorer)
    assert_parity(model, None, rows, scorer=scorer)


# -- sparse input (ColumnTransformer with a sparse one-hot block) -----------------------

CODES = [f"k{i}" for i in range(25)]


@functools.cache
def sparse_frame() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "code": pd.Series(rng.choice(CODES, n), dtype=object),
            "a": rng.randn(n) * 3.0,
            "b": rng.randn(n) * 1e3 + 5.0,
        }
    )
    y = ((df["a"] > 0) ^ df["code"].isin(CODES[:8])).astype(int).to_numpy()
    return df, y


def sparse_ct() -> ColumnTransformer:
    return ColumnTransformer(
        [("code", OneHotEncoder(handle_unknown="ignore"), ["code"])],
        remainder="passthrough",
        sparse_threshold=0.9,
    )


SPARSE_SCALERS = {
    "StandardScaler(with_mean=False)": lambda: StandardScaler(with_mean=False),
    "StandardScaler(no mean, no std)": lambda: StandardScaler(with_mean=False, with_std=False),
    "MaxAbsScaler": lambda: MaxAbsScaler(),
    "MaxAbsScaler(clip)": lambda: MaxAbsScaler(clip=True),
    "RobustScaler(with_centering=False)": lambda: RobustScaler(with_centering=False),
    "Normalizer(l1)": lambda: Normalizer(norm="l1"),
    "Normalizer(l2)": lambda: Normalizer(norm="l2"),
    "Normalizer(max)": lambda: Normalizer(norm="max"),
}


@pytest.mark.parametrize("kind", list(SPARSE_SCALERS))
def test_scaler_on_sparse_input(kind: str) -> None:
    df, y = sparse_frame()
    model = make_pipeline(sparse_ct(), SPARSE_SCALERS[kind](), LogisticRegression()).fit(df, y)
    assert model[0].sparse_output_
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    rows = df.head(6).copy()
    rows["code"] = ["never-seen", "k1", "k2", "k3", "k4", "k5"]
    rows["a"] = [0.0, -0.0, 1e-300, 1e300, -1e300, 3.0]
    rows["b"] = [0.0, 0.0, 0.0, 7.0, 1e-200, 0.0]
    for frame in (df, rows):
        if assert_same_outcome(model, None, frame, scorer=scorer):
            assert_features_identical(model, frame, scorer, signed_zeros=False)


def test_sparse_scaling_multiplies_by_the_reciprocal() -> None:
    """On sparse input scikit-learn computes ``x * (1 / s)``, which differs from ``x / s``."""
    df, y = sparse_frame()
    model = make_pipeline(sparse_ct(), MaxAbsScaler(), LogisticRegression()).fit(df, y)
    scorer = compile_scorer(model)
    ours = run_ops(scorer, df)[:, model_columns(scorer)]
    raw = dense(model[0].transform(df))
    assert bits_differ(ours, raw / model[1].scale_).any()
    assert not bits_differ(ours, dense(model[:-1].transform(df)), signed_zeros=False).any()


def test_sparse_input_refused_where_scikit_learn_refuses_it() -> None:
    df, y = sparse_frame()
    ct = sparse_ct().fit(df)
    Xt = ct.transform(df)
    for scaler in (MinMaxScaler().fit(Xt.toarray()), StandardScaler().fit(Xt.toarray())):
        lr = LogisticRegression().fit(scaler.transform(Xt.toarray()), y)
        model = Pipeline([("ct", ct), ("scale", scaler), ("lr", lr)])
        with pytest.raises((TypeError, ValueError)):
            model.predict(df)
        with pytest.raises(UnsupportedEstimatorError, match="sparse"):
            compile_estimators(model)


# -- Normalizer ---------------------------------------------------------------------


@functools.cache
def fitted_normalizer(norm: str, ds: str, frame: bool) -> tuple[Any, Any, Any]:
    X, y = dataset(ds)
    X = X.copy()
    X[0] = 0.0  # zero row: left as it is
    X[1] = 1e-17  # norm below 10 * eps: left as it is
    X[2, 0] = 1e300  # l2 norm overflows to inf
    Xin: Any = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])]) if frame else X
    model = Pipeline(
        [("norm", Normalizer(norm=norm)), ("tree", DecisionTreeClassifier(random_state=0))]
    ).fit(Xin, y > np.median(y))
    return model, Xin, compile_scorer(model)


@pytest.mark.parametrize("frame", [False, True], ids=["array", "DataFrame"])
@pytest.mark.parametrize("ds", ["breast_cancer", "wide", "regression"])
@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer_bit_for_bit(norm: str, ds: str, frame: bool) -> None:
    model, Xin, scorer = fitted_normalizer(norm, ds, frame)
    assert_features_identical(model, Xin, scorer)
    assert_parity(model, None, Xin, scorer=scorer)
    # batches of one row sum the same way
    assert_features_identical(model, Xin[:1] if not frame else Xin.head(1), scorer)


@pytest.mark.parametrize("norm", ["l1", "l2", "max"])
def test_normalizer_refuses_nan_and_infinity(norm: str) -> None:
    model, Xin, scorer = fitted_normalizer(norm, "regression", False)
    for v in (np.nan, np.inf, -np.inf):
        rows = Xin[:3].copy()
        rows[1, 5] = v
        err = assert_refused(model, None, rows, scorer=scorer)
        assert "Normalizer" in str(err) and "'x5'" in str(err)


def test_normalizer_summation_order_matters() -> None:
    """numpy's pairwise / einsum sums differ from a left-to-right sum on these rows."""
    model, Xin, scorer = fitted_normalizer("l2", "wide", False)
    ours = run_ops(scorer, Xin)[:, model_columns(scorer)]
    naive = Xin / np.sqrt(np.array([sum(v * v for v in row) for row in Xin]))[:, None]
    assert bits_differ(ours[3:], naive[3:]).any()


@pytest.mark.parametrize(
    "steps",
    [
        lambda: [StandardScaler(), Normalizer("l1")],
        lambda: [SimpleImputer(), MinMaxScaler(), Normalizer("l2")],
        lambda: [FunctionTransformer(np.abs, validate=True), RobustScaler(), Normalizer()],
        lambda: [KBinsDiscretizer(4, encode="ordinal"), Normalizer("l1")],
    ],
    ids=["scaler", "imputer-minmax", "function-robust", "kbins"],
)
def test_normalizer_after_order_keeping_steps_on_a_dataframe(steps: Any) -> None:
    """A DataFrame's values stay Fortran-ordered through these steps: summed left to right."""
    X, y = dataset("breast_cancer")
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    model = make_pipeline(*steps(), LogisticRegression(max_iter=5000)).fit(df, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert_features_identical(model, df, scorer)


def test_normalizer_after_a_column_transformer_is_within_a_few_ulps() -> None:
    """Known limit: numpy's hstack picks C or Fortran order from the blocks' strides; the
    plan assumes C order after a ColumnTransformer. Here the result is Fortran-ordered, so
    norms may differ in the last bit; predictions still match."""
    X, y = dataset("breast_cancer")
    df = pd.DataFrame(X, columns=[f"c{i}" for i in range(X.shape[1])])
    ct = ColumnTransformer(
        [("a", StandardScaler(), ["c0"]), ("b", MinMaxScaler(), [f"c{i}" for i in range(1, 30)])]
    )
    model = make_pipeline(ct, Normalizer(), LogisticRegression()).fit(df, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    ours = run_ops(scorer, df)[:, model_columns(scorer)]
    theirs = model[:-1].transform(df)
    assert np.max(np.abs(ours - theirs)) <= 4 * np.finfo(float).eps
