"""LGBMClassifier and LGBMRegressor compile to plans scoring exactly as LightGBM does.

LightGBM compares in float64 (``x <= threshold`` goes left), zeroes values with
``|x| <= kZeroThreshold`` (1e-35f) first, and sends NaN by each split's missing
type (None: as 0.0; NaN: the default side; Zero: zero and NaN the default side).
The sharp inputs are each threshold and its float64 and float32 neighbours, the
zero band's edges, NaN in every feature, and extremes (LightGBM takes +-inf and
+-1e300). Every comparison here is ``np.array_equal`` against LightGBM's own
``predict`` / ``predict_proba`` / ``decision_function`` (bit for bit), and the
build's parity rule on top (labels included).
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bundler.compiler import compile_estimators, supported
from bundler.compiler.converters.boosting_lightgbm import BELOW_BAND, ZERO_THRESHOLD
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._boosting import assert_bit_exact, case_id, positive
from tests._data import dataset, with_nan
from tests._parity import compile_scorer, kernels, mutated, to_records, written_plan
from tests.test_sklearn_trees_converter import (
    HYPOTHESIS,
    nan_rows,
    probes,
    value_rows,
)

lgb = pytest.importorskip("lightgbm")

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

BASE = {"n_estimators": 25, "num_leaves": 15, "min_child_samples": 5, "n_jobs": 1, "verbose": -1}
EXTREMES = (0.0, -0.0, 1e-300, -1e-300, 1e300, -1e300, math.inf, -math.inf, 3.5e38, -3.5e38)
#: the edges of LightGBM's zero band, and values inside and just outside it
BAND = (
    ZERO_THRESHOLD,
    -ZERO_THRESHOLD,
    BELOW_BAND,
    float(np.nextafter(ZERO_THRESHOLD, np.inf)),
    float(np.nextafter(ZERO_THRESHOLD, 0.0)),
    float(np.nextafter(-ZERO_THRESHOLD, 0.0)),
    1e-36,
    -1e-36,
    1e-35,
    -1e-35,
)

FACTORIES: dict[str, Any] = {
    "binary": lambda: lgb.LGBMClassifier(**BASE),
    "multiclass": lambda: lgb.LGBMClassifier(**BASE),
    "rf": lambda: lgb.LGBMClassifier(
        boosting_type="rf", bagging_freq=1, bagging_fraction=0.6, **BASE
    ),
    "regression": lambda: lgb.LGBMRegressor(**BASE),
    "regression_l1": lambda: lgb.LGBMRegressor(objective="regression_l1", **BASE),
    "huber": lambda: lgb.LGBMRegressor(objective="huber", **BASE),
    "quantile": lambda: lgb.LGBMRegressor(objective="quantile", alpha=0.7, **BASE),
    "poisson": lambda: lgb.LGBMRegressor(objective="poisson", **BASE),
    "gamma": lambda: lgb.LGBMRegressor(objective="gamma", **BASE),
    "tweedie": lambda: lgb.LGBMRegressor(objective="tweedie", **BASE),
}
DATA = {"binary": "binary", "multiclass": "multi3", "rf": "binary"}
CASES = [(kind, nan) for kind in FACTORIES for nan in (False, True)]


def _data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    X, y = dataset(DATA.get(kind, "regression"))
    if kind in ("poisson", "gamma", "tweedie"):
        y = positive(y)
    # a zero band in feature 0: exact zeros and tiny values, so splits at +-kZeroThreshold
    X = X.copy()
    X[::7, 0] = 0.0
    X[3::11, 0] = 1e-36
    return X, y


@functools.cache
def fitted(kind: str, nan: bool) -> tuple[Any, np.ndarray, Scorer]:
    X, y = _data(kind)
    Xtrain = with_nan(X) if nan else X
    est = FACTORIES[kind]().fit(Xtrain, y)
    return est, Xtrain, compile_scorer(est)


def lgb_splits(est: Any) -> list[tuple[int, float]]:
    """(feature, threshold) of every split in the booster's dump."""
    out = set()

    def walk(node: dict[str, Any]) -> None:
        if "split_index" in node:
            out.add((int(node["split_feature"]), float(node["threshold"])))
            walk(node["left_child"])
            walk(node["right_child"])

    for tree in est.booster_.dump_model()["tree_info"]:
        walk(tree["tree_structure"])
    return sorted(out)


def assert_exact(est: Any, X: np.ndarray, scorer: Scorer, context: str = "") -> None:
    """LightGBM's outputs (raw scores too, for a classifier), bit for bit."""
    raw = est.predict(X, raw_score=True) if hasattr(est, "classes_") else None
    assert_bit_exact(est, X, scorer, context, raw)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_training_data(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    assert_exact(est, Xtrain, scorer, "training data")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_thresholds_and_their_neighbours(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    split_list = lgb_splits(est)
    rows = probes(split_list, np.nan_to_num(Xtrain), limit=300, float64_steps=True)
    assert len(rows) >= 5 * min(300, len(split_list))
    assert_exact(est, rows, scorer, "threshold probes")


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_zero_band_nan_and_extremes(case: tuple[str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    X = np.nan_to_num(Xtrain)
    features = range(X.shape[1])
    assert_exact(est, value_rows(X, BAND, features), scorer, "zero band")
    assert_exact(est, nan_rows(X), scorer, "NaN in each feature")
    assert_exact(est, value_rows(X, EXTREMES, features), scorer, "extremes")


def test_zero_band_matters() -> None:
    """Comparing the raw threshold (no zero band) differs from LightGBM on the probes."""
    est, Xtrain, scorer = fitted("regression", False)
    rows = np.vstack([np.c_[np.full(len(Xtrain), v), Xtrain[:, 1:]] for v in BAND])
    compiled = compile_estimators(est)
    thresholds = [t for f, t in lgb_splits(est) if -ZERO_THRESHOLD <= t < ZERO_THRESHOLD and f == 0]
    assert thresholds, "no split at the zero band"

    def unmoved(thr: np.ndarray) -> np.ndarray:
        thr[thr == BELOW_BAND] = -ZERO_THRESHOLD
        return thr

    wrong = Scorer(written_plan(mutated(compiled, "tree_sum", 6, unmoved)), kernels())
    ours = wrong.score_records(to_records(wrong, rows)).values
    assert not np.array_equal(ours, est.predict(rows))
    assert_exact(est, rows, scorer, "zero band")


def test_missing_types_nan_and_none_both_occur() -> None:
    """Trained with NaN, splits use missing type NaN (both default sides); without, None."""
    kinds = set()
    for nan in (False, True):
        est, _, _ = fitted("binary", nan)
        for tree in est.booster_.dump_model()["tree_info"]:
            stack = [tree["tree_structure"]]
            while stack:
                node = stack.pop()
                if "split_index" in node:
                    kinds.add((node["missing_type"], node["default_left"]))
                    stack += [node["left_child"], node["right_child"]]
    assert {("None", True), ("NaN", True), ("NaN", False)} <= kinds, kinds


def test_zero_as_missing_compiles_when_one_comparison_can_do_it() -> None:
    """zero_as_missing: each split either scores exactly or the model is refused."""
    rng = np.random.RandomState(3)
    X = rng.randn(400, 3)
    X[rng.rand(400, 3) < 0.3] = 0.0
    y = (X[:, 0] > 0.2).astype(int) + (X[:, 1] == 0)
    outcomes = set()
    for seed in range(4):
        est = lgb.LGBMRegressor(zero_as_missing=True, random_state=seed, **BASE)
        est.fit(X, y + 0.1 * rng.randn(400))
        try:
            scorer = compile_scorer(est)
        except UnsupportedEstimatorError as exc:
            assert "zero_as_missing" in str(exc)
            outcomes.add("refused")
            continue
        outcomes.add("compiled")
        rows = np.vstack([X, value_rows(X, BAND + EXTREMES, range(3)), nan_rows(X)])
        assert_exact(est, rows, scorer, f"zero_as_missing seed {seed}")
    assert outcomes


def test_early_stopping_scores_the_best_iteration() -> None:
    X, y = _data("binary")
    est = lgb.LGBMClassifier(**{**BASE, "n_estimators": 300, "learning_rate": 0.3})
    est.fit(
        X[:200],
        y[:200],
        eval_set=[(X[200:], y[200:])],
        callbacks=[lgb.early_stopping(3, verbose=False)],
    )
    assert 0 < est.best_iteration_ < 300
    assert_exact(est, X, compile_scorer(est), "early stopping")


def test_after_a_sparse_one_hot_encoding() -> None:
    """LightGBM reads a sparse matrix's left-out zeros as 0.0, as the dense plan does."""
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
    pipe = make_pipeline(sparse, lgb.LGBMClassifier(**BASE)).fit(df, y)
    Xt = pipe[0].transform(df)
    assert Xt.format == "csr"
    raw = pipe[-1].predict(Xt, raw_score=True)
    assert_bit_exact(pipe, df, compile_scorer(pipe), "sparse one-hot", raw)


def test_string_classes() -> None:
    X, y = _data("multiclass")
    names = np.array(["cat", "dog", "emu"])[y]
    est = lgb.LGBMClassifier(**BASE).fit(X, names)
    assert_exact(est, X, compile_scorer(est), "string classes")


@given(
    seed=st.integers(0, 10_000),
    n=st.integers(30, 200),
    d=st.integers(1, 6),
    classes=st.sampled_from([0, 2, 4]),
    nan=st.booleans(),
)
@HYPOTHESIS
def test_random_models_around_their_thresholds(
    seed: int, n: int, d: int, classes: int, nan: bool
) -> None:
    rng = np.random.RandomState(seed)
    X = rng.randn(n, d) * rng.choice([1e-3, 1.0, 1e3], d)
    X[rng.rand(n, d) < 0.1] = 0.0
    if nan:
        X[rng.rand(n, d) < 0.15] = np.nan
    score = np.nan_to_num(X) @ rng.randn(d)
    params = {**BASE, "n_estimators": 8, "min_child_samples": 3, "random_state": seed}
    if classes:
        y = np.digitize(score, np.quantile(score, np.linspace(0, 1, classes + 1)[1:-1]))
        if len(np.unique(y)) < 2:
            return
        est = lgb.LGBMClassifier(**params).fit(X, y)
    else:
        est = lgb.LGBMRegressor(**params).fit(X, score)
    scorer = compile_scorer(est)
    base = np.nan_to_num(X)
    rows = np.vstack(
        [X, probes(lgb_splits(est), base, float64_steps=True), value_rows(base, BAND, range(d))]
        if lgb_splits(est)
        else [X]
    )
    assert_exact(est, rows, scorer, f"seed {seed}")


# -- refusals ----------------------------------------------------------------------------


def _refused(est: Any, match: str) -> None:
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        compile_estimators(est)
    assert type(est).__name__ in str(info.value)


def test_categorical_splits_are_refused() -> None:
    rng = np.random.RandomState(0)
    X = np.c_[rng.randint(0, 6, 300), rng.randn(300)].astype(float)
    y = np.isin(X[:, 0], [1, 4]).astype(int)
    est = lgb.LGBMClassifier(**BASE).fit(X, y, categorical_feature=[0])
    _refused(est, "categorical")


def test_pandas_categories_are_refused() -> None:
    import pandas as pd

    rng = np.random.RandomState(0)
    df = pd.DataFrame({"c": pd.Categorical(rng.choice(list("abc"), 300)), "x": rng.randn(300)})
    est = lgb.LGBMRegressor(**BASE).fit(df, (df["c"] == "a") + df["x"])
    _refused(est, "categor")


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: lgb.LGBMRegressor(linear_tree=True, **BASE), "linear"),
        (lambda: lgb.LGBMRegressor(reg_sqrt=True, **BASE), "sqrt"),
        (lambda: lgb.LGBMRegressor(objective="cross_entropy", **BASE), "cross_entropy"),
        (lambda: lgb.LGBMClassifier(objective="multiclassova", **BASE), "multiclassova"),
        (lambda: lgb.LGBMClassifier(sigmoid=0.5, **BASE), "sigmoid"),
    ],
    ids=["linear_tree", "reg_sqrt", "cross_entropy", "multiclassova", "sigmoid"],
)
def test_unsupported_options_are_refused(make: Any, match: str) -> None:
    est = make()
    X, y = _data("multiclass" if "ova" in match else "binary")
    est.fit(X, y if "Classifier" in type(est).__name__ or match == "cross_entropy" else y + 1.0)
    _refused(est, match)


def test_custom_objective_is_refused() -> None:
    def l2(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y_pred - y_true, np.ones_like(y_true)

    X, y = _data("regression")
    _refused(lgb.LGBMRegressor(objective=l2, **BASE).fit(X, y), "custom objective")


def test_registered_and_listed() -> None:
    names = {r.cls.__name__ for r in supported()}
    assert {"LGBMClassifier", "LGBMRegressor"} <= names
