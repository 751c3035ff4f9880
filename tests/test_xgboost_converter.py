"""XGBClassifier and XGBRegressor compile to plans scoring exactly as XGBoost does.

XGBoost casts to float32 and sends ``x < split_condition`` left, NaN the default way;
it sums leaves in float32 from its base margin and transforms in float32. The sharp
inputs are each split condition, its float32 neighbours and the float64 values just
around it (which round onto it), NaN in every feature, and extremes (+-inf and
values that overflow float32 to infinity). Every comparison is ``np.array_equal``
against XGBoost's ``predict`` / ``predict_proba`` (bit for bit), plus the build's
parity rule (labels included).
"""

from __future__ import annotations

import functools
import json
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._boosting import assert_bit_exact, case_id, positive
from tests._data import dataset, with_nan
from tests._parity import compile_scorer, written_plan
from tests.test_sklearn_trees_converter import (
    HYPOTHESIS,
    nan_rows,
    probes,
    value_rows,
)

xgb = pytest.importorskip("xgboost")

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

BASE = {"n_estimators": 25, "max_depth": 4, "n_jobs": 1}
F32_MAX = float(np.finfo(np.float32).max)
EXTREMES = (
    0.0, -0.0, 1e-300, -1e-45, 1e300, -1e300, math.inf, -math.inf, F32_MAX, -F32_MAX, 3.5e38,
)  # fmt: skip

FACTORIES: dict[str, Any] = {
    "binary": lambda: xgb.XGBClassifier(**BASE),
    "multiclass": lambda: xgb.XGBClassifier(**BASE),
    "forest": lambda: xgb.XGBClassifier(
        num_parallel_tree=4, subsample=0.7, colsample_bynode=0.7, **{**BASE, "n_estimators": 5}
    ),
    "squarederror": lambda: xgb.XGBRegressor(**BASE),
    "absoluteerror": lambda: xgb.XGBRegressor(objective="reg:absoluteerror", **BASE),
    "pseudohuber": lambda: xgb.XGBRegressor(objective="reg:pseudohubererror", **BASE),
    "quantile": lambda: xgb.XGBRegressor(objective="reg:quantileerror", quantile_alpha=0.7, **BASE),
    "poisson": lambda: xgb.XGBRegressor(objective="count:poisson", **BASE),
    "gamma": lambda: xgb.XGBRegressor(objective="reg:gamma", **BASE),
    "tweedie": lambda: xgb.XGBRegressor(objective="reg:tweedie", **BASE),
    "logistic": lambda: xgb.XGBRegressor(objective="reg:logistic", **BASE),
}
DATA = {"binary": "binary", "multiclass": "multi3", "forest": "multi3"}
CASES = [(kind, nan) for kind in FACTORIES for nan in (False, True)]


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = dataset(DATA.get(kind, "regression"))
    if kind in ("poisson", "gamma", "tweedie"):
        y = positive(y)
    elif kind == "pseudohuber":
        y = y / y.std()  # within huber_slope: trees that split
    elif kind == "logistic":
        y = (y > np.median(y)).astype(float)
    return X * np.array([1.0, 1e-3, 1e3, *([1.0] * (X.shape[1] - 3))]), y


@functools.cache
def fitted(kind: str, nan: bool) -> tuple[Any, np.ndarray, Scorer]:
    X, y = _data(kind)
    Xtrain = with_nan(X) if nan else X
    est = FACTORIES[kind]().fit(Xtrain, y)
    return est, Xtrain, compile_scorer(est)


def _trees(est: Any) -> list[dict[str, Any]]:
    model = json.loads(est.get_booster().save_raw("json"))
    return model["learner"]["gradient_booster"]["model"]["trees"]


def xgb_splits(est: Any) -> list[tuple[int, float]]:
    """(feature, split condition) of every split of the booster."""
    out = set()
    for tree in _trees(est):
        for node, left in enumerate(tree["left_children"]):
            if left >= 0:
                out.add((int(tree["split_indices"][node]), float(tree["split_conditions"][node])))
    return sorted(out)


#: XGBoost's outputs, bit for bit (it has no decision_function)
assert_exact = assert_bit_exact


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_data(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    assert_exact(est, Xtrain, scorer, "training data")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_split_conditions_and_their_neighbours(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    split_list = xgb_splits(est)
    rows = probes(split_list, np.nan_to_num(Xtrain), limit=300, float64_steps=True)
    assert len(rows) >= 5 * min(300, len(split_list))
    assert_exact(est, rows, scorer, "split probes")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_nan_and_extremes(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    X = np.nan_to_num(Xtrain)
    assert_exact(est, nan_rows(X), scorer, "NaN in each feature")
    assert_exact(est, value_rows(X, EXTREMES, range(X.shape[1])), scorer, "extremes")


def test_float32_accumulation_matters() -> None:
    """Summing the leaves in float64 and rounding once differs from XGBoost on some rows;
    the plan's float32 sum does not."""
    est, Xtrain, scorer = fitted("squarederror", False)
    trees = _trees(est)
    leaves = est.get_booster().predict(xgb.DMatrix(Xtrain), pred_leaf=True).astype(int)
    values = np.array(
        [[np.float32(trees[t]["split_conditions"][i]) for t, i in enumerate(row)] for row in leaves]
    )
    margin = est.predict(Xtrain, output_margin=True)
    base = margin - values.sum(axis=1, dtype=np.float32)  # close to the base margin
    rounded_once = (np.float64(np.median(base)) + values.astype(np.float64).sum(axis=1)).astype(
        np.float32
    )
    assert not np.array_equal(rounded_once, margin)
    assert_exact(est, Xtrain, scorer, "float32 sum")


def test_the_aot_kernels_are_exact_too() -> None:
    """The float32 kernels compiled ahead of time (as the frozen app runs them): the same
    expf, sums and divisions as the JIT's, XGBoost's to the bit."""
    from bundler.backends import compile_aot
    from mlbundle_runtime.backend import load_kernels

    aot = load_kernels("aot", compile_aot())
    for kind in ("binary", "multiclass", "poisson", "logistic"):
        est, Xtrain, _ = fitted(kind, True)
        scorer = Scorer(written_plan(compile_estimators(est)), aot)
        assert_exact(est, Xtrain, scorer, f"aot {kind}")


def test_both_default_directions_occur() -> None:
    est, _, _ = fitted("binary", True)
    directions = {
        d
        for t in _trees(est)
        for d, left in zip(t["default_left"], t["left_children"], strict=True)
        if left >= 0
    }
    assert directions == {0, 1}


def test_early_stopping_scores_the_best_iteration() -> None:
    X, y = _data("binary")
    est = xgb.XGBClassifier(
        **{**BASE, "n_estimators": 300, "learning_rate": 0.5}, early_stopping_rounds=3
    )
    est.fit(X[:200], y[:200], eval_set=[(X[200:], y[200:])], verbose=False)
    assert 0 < est.best_iteration < 299
    assert_exact(est, X, compile_scorer(est), "early stopping")


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 200),
    d=st.integers(1, 6),
    classes=st.sampled_from([0, 2, 4]),
    nan=st.booleans(),
)
@HYPOTHESIS
def test_random_models_around_their_splits(
    seed: int, n: int, d: int, classes: int, nan: bool
) -> None:
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.choice([1e-3, 1.0, 1e3], d)
    if nan:
        X[rng.rand(n, d) < 0.15] = np.nan
    score = np.nan_to_num(X) @ rng.randn(d)
    params = {**BASE, "n_estimators": 8, "random_state": seed}
    if classes:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
        if len(np.unique(y)) != classes:
            return
        est = xgb.XGBClassifier(**params).fit(X, y)
    else:
        est = xgb.XGBRegressor(**params).fit(X, score)
    scorer = compile_scorer(est)
    split_list = xgb_splits(est)
    extra = [probes(split_list, np.nan_to_num(X), float64_steps=True)] if split_list else []
    assert_exact(est, np.vstack([X, *extra]), scorer, f"seed {seed}")


# -- refusals ----------------------------------------------------------------------------


def _refused(est: Any, match: str) -> None:
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        compile_estimators(est)
    assert type(est).__name__ in str(info.value)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: xgb.XGBClassifier(booster="dart", **BASE), "dart"),
        (lambda: xgb.XGBClassifier(booster="gblinear", n_estimators=5), "gblinear"),
        (lambda: xgb.XGBClassifier(missing=0.0, **BASE), "missing"),
        (lambda: xgb.XGBClassifier(objective="binary:logitraw", **BASE), "logitraw"),
        (lambda: xgb.XGBRegressor(objective="reg:squaredlogerror", **BASE), "squaredlogerror"),
    ],
    ids=["dart", "gblinear", "missing", "logitraw", "squaredlogerror"],
)
def test_unsupported_options_are_refused(make: Any, match: str) -> None:
    est = make()
    X, y = _data("binary")
    est.fit(X, y)
    _refused(est, match)


def test_multi_softmax_and_vector_leaves_are_refused() -> None:
    X, y = _data("multiclass")
    _refused(xgb.XGBClassifier(objective="multi:softmax", **BASE).fit(X, y), "multi:softmax")
    vector = xgb.XGBClassifier(multi_strategy="multi_output_tree", tree_method="hist", **BASE)
    _refused(vector.fit(X, y), "vector leaves")


def test_sparse_input_is_refused() -> None:
    """XGBoost reads the zeros a sparse matrix leaves out as missing, so after a sparse
    one-hot encoding it scores differently from the same matrix dense: refused."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": rng.choice(list("abcd"), 300), "x": rng.randn(300)})
    y = ((df["c"] == "a") | (df["x"] > 0.5)).astype(int)
    sparse = ColumnTransformer(
        [("c", OneHotEncoder(), ["c"]), ("x", "passthrough", ["x"])], sparse_threshold=1.0
    )
    pipe = make_pipeline(sparse, xgb.XGBClassifier(**BASE)).fit(df, y)
    dense = np.asarray(pipe[0].transform(df).todense())
    assert not np.array_equal(pipe[-1].predict_proba(dense), pipe.predict_proba(df))
    with pytest.raises(UnsupportedEstimatorError, match="sparse"):
        compile_estimators(pipe)
    pipe.set_params(columntransformer__sparse_threshold=0.0).fit(df, y)
    assert_exact(pipe, df, compile_scorer(pipe), "dense one-hot")


def test_categorical_features_are_refused() -> None:
    import pandas as pd

    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": pd.Categorical(rng.choice(list("abc"), 300)), "x": rng.randn(300)})
    y = ((df["c"] == "a") ^ (df["x"] > 0)).astype(int)
    est = xgb.XGBClassifier(enable_categorical=True, **BASE).fit(df, y)
    _refused(est, "categorical")


def test_several_targets_are_refused() -> None:
    X, y = _data("squarederror")
    several = xgb.XGBRegressor(objective="reg:quantileerror", quantile_alpha=[0.3, 0.7], **BASE)
    _refused(several.fit(X, y), "2 targets")
    _refused(xgb.XGBRegressor(**BASE).fit(X, np.c_[y, -y]), "2 targets")


def test_custom_objective_is_refused() -> None:
    def l2(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y_pred - y_true, np.ones_like(y_true)

    X, y = _data("squarederror")
    _refused(xgb.XGBRegressor(objective=l2, **BASE).fit(X, y), "custom objective")


def test_registered_and_listed() -> None:
    names = {r.cls.__name__ for r in supported()}
    assert {"XGBClassifier", "XGBRegressor"} <= names
