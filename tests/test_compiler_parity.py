"""Compiled plans predict what scikit-learn predicts, converter by converter.

Every test compiles a fitted estimator, scores the same rows with
scikit-learn and with the plan (written and read back, as the app does), and
requires identical labels and numbers within 1e-9 (``tests._parity``). Where
scikit-learn refuses an input (ValueError), the plan must refuse it too
(InputError), and where scikit-learn accepts it, the plan must not refuse it.

The inputs go where converters have gone wrong before (design.md section 3):
exactly at tree thresholds and one float32 step either side, NaN in each
feature for trees trained with and without NaN, unseen categories, and extreme
values (0, +-1e300, +-inf, the float32 overflow edge).
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier, RandomForestRegressor
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import Scorer
from tests._data import dataset, with_nan
from tests._parity import (
    assert_parity,
    assert_probes_catch,
    assert_refused,
    assert_same_outcome,
    compare,
    compile_scorer,
    kernels,
    mutated,
    replace,
    sklearn_predict,
    threshold_probes,
    to_records,
    tree_thresholds,
    written_plan,
)

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "resources" / "artifacts"
GATE = ROOT / "resources" / "gate"

F32_MAX = float(np.finfo(np.float32).max)
# float64 values just above float32's largest value: the first still rounds down
# to F32_MAX, the second is the exact halfway point, which rounds (to even) to inf.
F32_HALF_ULP = 2.0**103
JUST_ABOVE_F32_MAX = float(np.nextafter(F32_MAX + F32_HALF_ULP, 0.0))
F32_OVERFLOW_TIE = F32_MAX + F32_HALF_ULP

HYPOTHESIS = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


# -- data sets ---------------------------------------------------------------------

CLASSIFICATION = ("binary", "multi3", "multi4", "breast_cancer", "iris")
REGRESSION = ("regression", "diabetes")


# -- trees and forests -----------------------------------------------------------

TREE_FACTORIES = {
    "DecisionTreeClassifier": lambda: DecisionTreeClassifier(random_state=0),
    "DecisionTreeClassifier(splitter=random)": lambda: DecisionTreeClassifier(
        splitter="random", random_state=0
    ),
    "RandomForestClassifier": lambda: RandomForestClassifier(n_estimators=12, random_state=0),
    "DecisionTreeRegressor": lambda: DecisionTreeRegressor(random_state=0),
    "RandomForestRegressor": lambda: RandomForestRegressor(n_estimators=12, random_state=0),
}

TREE_CASES = [
    (kind, ds, nan)
    for kind in TREE_FACTORIES
    for ds in (REGRESSION if "Regressor" in kind else CLASSIFICATION)
    if not ("random" in kind and ds not in ("binary", "breast_cancer"))
    for nan in (False, True)
]


def _case_id(case: tuple[str, str, bool]) -> str:
    kind, ds, nan = case
    return f"{kind}-{ds}-{'nan' if nan else 'complete'}"


@functools.cache
def fitted_tree(kind: str, ds: str, nan: bool) -> tuple[Any, np.ndarray, Any]:
    """(estimator, training X, scorer) for one tree case, fitted and compiled once."""
    X, y = dataset(ds)
    Xtrain = with_nan(X) if nan else X
    est = TREE_FACTORIES[kind]().fit(Xtrain, y)
    return est, Xtrain, compile_scorer(est)


@pytest.mark.parametrize("case", TREE_CASES, ids=_case_id)
def test_tree_training_data(case: tuple[str, str, bool]) -> None:
    est, Xtrain, scorer = fitted_tree(*case)
    assert_parity(est, None, Xtrain, scorer=scorer, context="training data")


@pytest.mark.parametrize("case", TREE_CASES, ids=_case_id)
def test_tree_thresholds_and_float32_neighbours(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted_tree(*case)
    X, _ = dataset(case[1])
    probes = threshold_probes(est, X, limit=200)
    assert len(probes) >= 3 * min(200, len(tree_thresholds(est)))
    assert_parity(est, None, probes, scorer=scorer, context="threshold probes")


def test_threshold_probes_catch_a_plan_comparing_in_float64() -> None:
    """The probes are sharp: the same plan with its float32 cast turned off (``cast32``,
    the last argument of ``tree_sum``) fails the build's parity check on them."""
    est, _, scorer = fitted_tree("RandomForestRegressor", "diabetes", False)
    X, _ = dataset("diabetes")
    wrong = mutated(compile_estimators(est), "tree_sum", -1, replace(1, 0))
    assert_probes_catch(est, threshold_probes(est, X, limit=200), scorer, wrong)


@pytest.mark.parametrize("case", TREE_CASES, ids=_case_id)
def test_tree_nan_in_each_feature(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted_tree(*case)
    X, _ = dataset(case[1])
    base = X[:40]
    rows = []
    for f in range(X.shape[1]):
        block = base.copy()
        block[:, f] = np.nan
        rows.append(block)
    all_missing = np.full((1, X.shape[1]), np.nan)
    assert_parity(est, None, np.vstack([*rows, all_missing]), scorer=scorer, context="NaN rows")


def test_nan_trained_trees_use_both_missing_directions() -> None:
    """Sanity for the NaN tests: missing_go_to_left takes both values in these models."""
    seen = set()
    for kind, ds, nan in TREE_CASES:
        if nan:
            est, _, _ = fitted_tree(kind, ds, nan)
            for tree in getattr(est, "estimators_", None) or [est]:
                t = tree.tree_
                seen.update(t.missing_go_to_left[t.children_left >= 0].tolist())
    assert seen == {0, 1}


def test_nan_direction_matters_for_the_comparison() -> None:
    """A plan that sent NaN left everywhere (treelite's rule) would fail these tests."""
    est, Xtrain, _ = fitted_tree("RandomForestClassifier", "breast_cancer", True)
    X, _ = dataset("breast_cancer")
    rows = X[:40].copy()
    rows[:, ::2] = np.nan
    compiled = compile_estimators(est)
    for op in compiled.header["ops"]:
        if op["kernel"] == "tree_sum":
            key = op["args"][5]["array"]  # nodes: clear every NaN-goes-right flag
            compiled.arrays[key][:, 0] &= 0xFFFFFF
    wrong = Scorer(written_plan(compiled), kernels())
    labels, proba = sklearn_predict(est, None, rows)
    with pytest.raises(AssertionError):
        compare(wrong.score_records(to_records(wrong, rows)), labels, proba)


@pytest.mark.parametrize("case", TREE_CASES, ids=_case_id)
def test_tree_extreme_values(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted_tree(*case)
    X, _ = dataset(case[1])
    for f in (0, X.shape[1] - 1):
        for v in (0.0, -0.0, F32_MAX, -F32_MAX, JUST_ABOVE_F32_MAX, -JUST_ABOVE_F32_MAX, 1e-300):
            rows = X[:3].copy()
            rows[:, f] = v
            assert_parity(est, None, rows, scorer=scorer, context=f"x{f}={v!r}")
        # float32(x) overflows: scikit-learn refuses "a value too large for float32"
        for v in (1e300, -1e300, math.inf, -math.inf, F32_OVERFLOW_TIE, 1e39):
            rows = X[:3].copy()
            rows[1, f] = v
            err = assert_refused(est, None, rows, scorer=scorer)
            assert "record 2" in str(err) and f"x{f}" in str(err)


def test_tree_refuses_nan_after_sparse_output() -> None:
    """Trees accept NaN only in dense input; a ColumnTransformer may hand them CSR."""
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "code": pd.Series(rng.choice([f"k{i}" for i in range(30)], n), dtype=object),
            "a": rng.randn(n),
        }
    )
    y = (df["a"] > 0).astype(int).to_numpy()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("c", OneHotEncoder(handle_unknown="ignore"), ["code"]),
                ("a", StandardScaler(), ["a"]),
            ]
        ),
        DecisionTreeClassifier(random_state=0),
    ).fit(df, y)
    assert_parity(model, None, df)
    q = df.head(3).copy()
    q.loc[1, "a"] = np.nan
    assert_same_outcome(model, None, q)


def _stepped(thr: float, steps: int) -> float:
    """``steps`` float32 ulps away from float32(thr), as float64."""
    v = np.float32(thr)
    direction = np.float32(np.inf if steps > 0 else -np.inf)
    for _ in range(abs(steps)):
        v = np.nextafter(v, direction)
    return float(v)


@pytest.mark.parametrize(
    "case",
    [
        ("RandomForestClassifier", "breast_cancer", True),
        ("RandomForestRegressor", "diabetes", False),
    ],
    ids=_case_id,
)
@HYPOTHESIS
@given(data=st.data())
def test_tree_random_rows_around_thresholds(case: tuple[str, str, bool], data: Any) -> None:
    est, _, scorer = fitted_tree(*case)
    X, _ = dataset(case[1])
    splits = tree_thresholds(est)
    n_rows = data.draw(st.integers(1, 12), label="rows")
    rows = []
    for _ in range(n_rows):
        row = X[data.draw(st.integers(0, len(X) - 1), label="base")].copy()
        for _ in range(data.draw(st.integers(1, 4), label="features moved")):
            f, thr = splits[data.draw(st.integers(0, len(splits) - 1), label="split")]
            move = data.draw(
                st.one_of(st.integers(-3, 3), st.just("exact"), st.just("nan")), label="move"
            )
            row[f] = thr if move == "exact" else math.nan if move == "nan" else _stepped(thr, move)
        rows.append(row)
    assert_parity(est, None, np.array(rows), scorer=scorer)


def test_single_leaf_trees() -> None:
    rng = np.random.RandomState(0)
    X = rng.randn(40, 3)
    reg = DecisionTreeRegressor().fit(X, np.full(40, 2.5))
    assert_parity(reg, None, np.vstack([X, [[np.nan, 0.0, 1e30]]]))
    clf = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, ["only"] * 40)
    assert_parity(clf, None, X)


def test_forest_string_classes_and_class_weight() -> None:
    X, y = dataset("multi3")
    labels = np.array(["setosa", "versicolor", "virginica"])[y]
    est = RandomForestClassifier(
        n_estimators=10, class_weight="balanced", max_samples=0.6, random_state=0
    ).fit(with_nan(X), labels)
    ours = assert_parity(est, None, threshold_probes(est, X, limit=100))
    assert set(ours.labels()) <= set(labels.tolist())


# -- logistic regression ----------------------------------------------------------

LOGISTIC = {
    "binary": lambda: LogisticRegression(),
    "binary-liblinear": lambda: LogisticRegression(solver="liblinear"),
    "breast_cancer": lambda: make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000)),
    "multi3": lambda: LogisticRegression(max_iter=1000),
    "multi4-newton-cg": lambda: LogisticRegression(solver="newton-cg", max_iter=1000),
    "iris": lambda: make_pipeline(StandardScaler(), LogisticRegression(C=10.0, max_iter=1000)),
}


@functools.cache
def fitted_logistic(name: str) -> tuple[Any, np.ndarray, Any]:
    X, y = dataset(name.split("-")[0])
    est = LOGISTIC[name]().fit(X, y)
    return est, X, compile_scorer(est)


@pytest.mark.parametrize("name", list(LOGISTIC))
def test_logistic_training_data(name: str) -> None:
    est, X, scorer = fitted_logistic(name)
    ours = assert_parity(est, None, X, scorer=scorer)
    n_classes = len(np.unique(dataset(name.split("-")[0])[1]))
    assert ours.proba is not None and ours.proba.shape[1] == n_classes


@pytest.mark.parametrize("name", list(LOGISTIC))
def test_logistic_extreme_values(name: str) -> None:
    est, X, scorer = fitted_logistic(name)
    for v in (0.0, -0.0, 1e300, -1e300, 1e-300, F32_OVERFLOW_TIE):
        rows = X[:4].copy()
        rows[:, 0] = v
        rows[2, :] = v
        assert_parity(est, None, rows, scorer=scorer, context=f"value {v!r}")
    for v in (math.inf, -math.inf, math.nan):
        rows = X[:3].copy()
        rows[2, 1] = v
        err = assert_refused(est, None, rows, scorer=scorer)
        assert "record 3" in str(err) and "'x1'" in str(err)


def _hand_set_binary(coef: list[float], intercept: float, classes: tuple[Any, Any]) -> Any:
    """A fitted binary LogisticRegression whose coefficients are set by hand."""
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    est = LogisticRegression().fit(X, [classes[0], classes[1], classes[0], classes[1]])
    est.coef_ = np.array([coef])
    est.intercept_ = np.array([intercept])
    return est


def test_logistic_binary_decision_exactly_zero_predicts_first_class() -> None:
    """scikit-learn predicts classes_[1] only when decision > 0; 0 gives classes_[0]."""
    est = _hand_set_binary([1.0, -1.0], 0.0, ("neg", "pos"))
    a = np.array([0.0, 1.0, -3.5, 1e300, 123456.789, 2.0**-1074])
    rows = np.column_stack([a, a])  # x0 - x1 == 0 exactly, in any order of summation
    assert np.all(est.decision_function(rows) == 0.0)
    ours = assert_parity(est, None, rows)
    assert ours.labels() == ["neg"] * len(a)
    assert np.all(ours.proba == 0.5)


def test_logistic_binary_decision_tiny_either_side_of_zero() -> None:
    est = _hand_set_binary([1.0, -1.0], 0.0, (0, 1))
    tiny = 2.0**-1074  # the smallest positive float64
    rows = np.array([[tiny, 0.0], [0.0, tiny], [1.0, np.nextafter(1.0, 2.0)], [1.0, 1.0 - 2**-53]])
    ours = assert_parity(est, None, rows)
    assert ours.labels() == [1, 0, 0, 1]


@pytest.mark.parametrize("name", ["binary", "breast_cancer"])
def test_logistic_binary_near_boundary(name: str) -> None:
    """Rows at decision +-1e-7: far above rounding noise, so the labels must agree."""
    est, X, scorer = fitted_logistic(name)
    lr = est[-1] if isinstance(est, Pipeline) else est
    pre = est[:-1] if isinstance(est, Pipeline) else None
    Z = pre.transform(X[:50]) if pre is not None else X[:50]
    w, b = lr.coef_[0], lr.intercept_[0]
    rows = []
    for target in (1e-7, -1e-7):
        on_plane = Z - ((Z @ w + b - target) / (w @ w))[:, None] * w
        if pre is not None:  # back to raw inputs through the scaler
            scaler = pre[-1]
            on_plane = on_plane * scaler.scale_ + scaler.mean_
        rows.append(on_plane)
    rows = np.vstack(rows)
    d = est.decision_function(rows)
    assert np.all(np.abs(d) < 1e-5) and (d > 0).sum() == 50
    assert_parity(est, None, rows, scorer=scorer)


@pytest.mark.parametrize("name", ["binary", "multi4-newton-cg"])
@HYPOTHESIS
@given(data=st.data())
def test_logistic_random_rows(name: str, data: Any) -> None:
    est, X, scorer = fitted_logistic(name)
    scale = data.draw(st.sampled_from([1.0, 1e-3, 1e3, 1e100]), label="scale")
    value = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    rows = data.draw(
        st.lists(st.lists(value, min_size=X.shape[1], max_size=X.shape[1]), min_size=1, max_size=8),
        label="rows",
    )
    assert_parity(est, None, np.array(rows) * scale, scorer=scorer)


# -- preprocessing on a mixed DataFrame -------------------------------------------

NUMS = ["a", "b"]
CATS = ["color", "size", "flag"]
COLORS = ["red", "green", "blue"]
SIZES = ["S", "M", "L", "XL"]
FLAGS = ["y", "n"]


@functools.cache
def _mixed() -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.RandomState(0)
    n = 240
    df = pd.DataFrame(
        {
            "color": pd.Series(rng.choice(COLORS, n), dtype=object),
            "a": rng.randn(n),
            "size": pd.Series(rng.choice(SIZES, n), dtype=object),
            "b": rng.randn(n) * 10 + 3,
            "flag": pd.Series(rng.choice(FLAGS, n), dtype=object),
        }
    )
    y = ((df["a"] > 0) ^ (df["color"] == "red") ^ (df["size"] == "XL")).astype(int).to_numpy()
    for c in df.columns:
        df.loc[rng.rand(n) < 0.12, c] = np.nan
    return df, y


def mixed_frame() -> tuple[pd.DataFrame, np.ndarray]:
    df, y = _mixed()
    return df.copy(), y


def missing_each_column(df: pd.DataFrame, n: int = 8) -> pd.DataFrame:
    """Blocks of ``n`` rows, one per column, with that column missing; plus an all-missing row."""
    blocks = []
    for c in df.columns:
        block = df.head(n).copy()
        block[c] = np.nan
        blocks.append(block)
    empty = df.head(1).copy()
    empty.loc[:, :] = np.nan
    out = pd.concat([*blocks, empty], ignore_index=True)
    for c in CATS:
        if c in out:
            out[c] = out[c].astype(object)
    return out


def with_unseen(df: pd.DataFrame) -> pd.DataFrame:
    """Rows with an unseen category in each categorical column in turn."""
    blocks = []
    for c in CATS:
        block = df.head(3).copy()
        block[c] = "never-seen"
        blocks.append(block)
    return pd.concat(blocks, ignore_index=True)


def preprocess(num_strategy: str = "median", cat_strategy: str = "most_frequent", **ohe: Any):
    ohe = {"handle_unknown": "ignore", "sparse_output": False, **ohe}
    return ColumnTransformer(
        [
            ("num", make_pipeline(SimpleImputer(strategy=num_strategy), StandardScaler()), NUMS),
            (
                "cat",
                make_pipeline(SimpleImputer(strategy=cat_strategy), OneHotEncoder(**ohe)),
                CATS,
            ),
        ]
    )


@pytest.mark.parametrize("cat_strategy", ["most_frequent", "constant"])
@pytest.mark.parametrize("num_strategy", ["mean", "median", "most_frequent", "constant"])
def test_simple_imputer_strategies(num_strategy: str, cat_strategy: str) -> None:
    df, y = mixed_frame()
    model = Pipeline(
        [("pre", preprocess(num_strategy, cat_strategy)), ("lr", LogisticRegression())]
    ).fit(df, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    assert_parity(model, None, missing_each_column(df), scorer=scorer)
    assert [i.kind for i in scorer.plan.inputs] == [
        "categorical",
        "numeric",
        "categorical",
        "numeric",
        "categorical",
    ]


@pytest.mark.parametrize("strategy", ["mean", "median", "most_frequent", "constant"])
@pytest.mark.parametrize("keep_empty", [False, True])
def test_simple_imputer_numeric_into_tree(strategy: str, keep_empty: bool) -> None:
    """Columns that were all-missing in training are dropped unless keep_empty_features."""
    X, y = dataset("binary")
    X = with_nan(X, 0.2)
    X[:, 3] = np.nan
    kwargs = {"fill_value": -999.0} if strategy == "constant" else {}
    imputer = SimpleImputer(strategy=strategy, keep_empty_features=keep_empty, **kwargs)
    model = make_pipeline(imputer, DecisionTreeClassifier(random_state=0)).fit(X, y)
    rows = np.vstack([X[:60], np.full((1, X.shape[1]), np.nan)])
    assert_parity(model, None, rows)
    rows = X[:3].copy()
    rows[1, 0] = math.inf
    assert_refused(model, None, rows)


def test_simple_imputer_string_constant_fill_is_a_category() -> None:
    """The constant fill ('missing') becomes a category the encoder knows."""
    df, y = mixed_frame()
    model = Pipeline(
        [
            (
                "pre",
                ColumnTransformer(
                    [
                        (
                            "cat",
                            make_pipeline(
                                SimpleImputer(strategy="constant", fill_value="missing"),
                                OneHotEncoder(handle_unknown="error", sparse_output=False),
                            ),
                            CATS,
                        ),
                        ("num", SimpleImputer(), NUMS),
                    ]
                ),
            ),
            ("rf", RandomForestClassifier(n_estimators=8, random_state=0)),
        ]
    ).fit(df, y)
    assert_parity(model, None, missing_each_column(df))
    assert_refused(model, None, with_unseen(df).head(3), match="unknown category")


@pytest.mark.parametrize("handle_unknown", ["ignore", "error"])
@pytest.mark.parametrize("drop", [None, "first", "if_binary"])
def test_one_hot_encoder_options(drop: str | None, handle_unknown: str) -> None:
    df, y = mixed_frame()
    model = Pipeline(
        [
            ("pre", preprocess(drop=drop, handle_unknown=handle_unknown)),
            ("lr", LogisticRegression()),
        ]
    ).fit(df, y)
    scorer = compile_scorer(model)
    ours = assert_parity(model, None, df, scorer=scorer)
    assert len(set(ours.labels())) == 2
    assert_parity(model, None, missing_each_column(df), scorer=scorer)
    unseen = with_unseen(df)
    if handle_unknown == "ignore":
        assert_parity(model, None, unseen, scorer=scorer)
    else:
        for c in CATS:
            rows = unseen[unseen[c] == "never-seen"]
            err = assert_refused(model, None, rows, scorer=scorer, match="unknown category")
            assert repr(c) in str(err)


def test_one_hot_encoder_drop_explicit() -> None:
    df, y = mixed_frame()
    model = Pipeline(
        [
            ("pre", preprocess(drop=["blue", "M", "n"])),
            ("tree", DecisionTreeClassifier(random_state=0)),
        ]
    ).fit(df, y)
    assert_parity(model, None, df)
    assert_parity(model, None, with_unseen(df))


@pytest.mark.parametrize("handle_unknown", ["ignore", "error"])
def test_one_hot_encoder_nan_as_category(handle_unknown: str) -> None:
    """Without an imputer, NaN is a category of its own (fitted with NaN present)."""
    df, y = mixed_frame()
    model = make_pipeline(
        ColumnTransformer(
            [
                ("cat", OneHotEncoder(handle_unknown=handle_unknown), CATS),
                ("num", SimpleImputer(), NUMS),
            ]
        ),
        LogisticRegression(),
    ).fit(df, y)
    assert all(pd.isna(c[-1]) for c in model[0].named_transformers_["cat"].categories_)
    assert_parity(model, None, missing_each_column(df))
    if handle_unknown == "error":
        assert_refused(model, None, with_unseen(df).head(3))
    else:
        assert_parity(model, None, with_unseen(df))


def test_one_hot_encoder_refuses_nan_not_seen_in_training() -> None:
    df, y = mixed_frame()
    complete = df.dropna().reset_index(drop=True)
    yc = y[df.notna().all(axis=1).to_numpy()]
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="error"), CATS), ("num", "drop", NUMS)]
        ),
        LogisticRegression(),
    ).fit(complete, yc)
    assert_parity(model, None, complete)
    rows = complete.head(2).copy()
    rows["size"] = rows["size"].astype(object)
    rows.loc[1, "size"] = np.nan
    assert_refused(model, None, rows, match="size")


def _numeric_codes_model(handle_unknown: str, drop: str | None = None) -> tuple[Any, pd.DataFrame]:
    rng = np.random.RandomState(5)
    n = 200
    df = pd.DataFrame({"k": rng.choice([1.0, 2.0, 5.0, np.nan], n), "a": rng.randn(n)})
    y = ((df["k"] == 2.0) ^ (df["a"] > 0.5)).astype(int).to_numpy()
    model = make_pipeline(
        ColumnTransformer(
            [("k", OneHotEncoder(handle_unknown=handle_unknown, drop=drop), ["k"])],
            remainder="drop",
        ),
        LogisticRegression(),
    ).fit(df, y)
    return model, df


@pytest.mark.parametrize("drop", [None, "first"])
@pytest.mark.parametrize("handle_unknown", ["ignore", "error"])
def test_one_hot_encoder_numeric_categories(handle_unknown: str, drop: str | None) -> None:
    model, df = _numeric_codes_model(handle_unknown, drop)
    scorer = compile_scorer(model)
    assert_parity(model, None, df, scorer=scorer)
    known = pd.DataFrame({"k": [1.0, 2.0, 5.0, np.nan], "a": [0.0, 1.0, -1.0, 1e300]})
    assert_parity(model, None, known, scorer=scorer)
    for v in (3.0, 0.0, -0.0, 1e300):
        unseen = pd.DataFrame({"k": [1.0, v], "a": [0.0, 0.0]})
        if handle_unknown == "ignore":
            assert_parity(model, None, unseen, scorer=scorer)
        else:
            assert_refused(model, None, unseen, scorer=scorer)


@pytest.mark.parametrize(
    "handle_unknown",
    [
        "error",
        "ignore",
    ],
)
def test_one_hot_encoder_numeric_refuses_infinity(handle_unknown: str) -> None:
    """OneHotEncoder.transform validates with allow-nan: infinity is a ValueError."""
    model, _ = _numeric_codes_model(handle_unknown)
    for v in (math.inf, -math.inf):
        rows = pd.DataFrame({"k": [1.0, v], "a": [0.0, 0.0]})
        assert_refused(model, None, rows)


def test_column_transformer_remainder_drop_by_name() -> None:
    df, y = mixed_frame()
    model = make_pipeline(
        ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore"), ["flag", "color"])],
            remainder="drop",
        ),
        LogisticRegression(),
    ).fit(df[["color", "flag"]], y)
    assert_parity(model, None, df[["color", "flag"]])


def test_column_transformer_selection_by_index_and_mask() -> None:
    X, y = dataset("binary")
    Xn = with_nan(X)
    mask = np.zeros(X.shape[1], dtype=bool)
    mask[[1, 4, 6]] = True
    model = make_pipeline(
        ColumnTransformer(
            [
                ("idx", make_pipeline(SimpleImputer(), StandardScaler()), [7, 0, 2]),
                ("mask", SimpleImputer(strategy="median"), mask),
                ("again", SimpleImputer(strategy="constant", fill_value=0.5), [0]),
            ],
            remainder="drop",
        ),
        LogisticRegression(),
    ).fit(Xn, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, Xn, scorer=scorer)
    assert_parity(model, None, with_nan(X[:50], 0.5, seed=3), scorer=scorer)


@pytest.mark.parametrize("where", ["remainder", "explicit"])
def test_column_transformer_passthrough(where: str) -> None:
    """'passthrough' (remainder or named) is documented as supported; in scikit-learn
    1.9, ``transformers_`` holds it as a FunctionTransformer."""
    X, y = dataset("binary")
    Xn = with_nan(X)
    if where == "remainder":
        ct = ColumnTransformer([("s", StandardScaler(), [0, 3])], remainder="passthrough")
    else:
        ct = ColumnTransformer(
            [("s", StandardScaler(), [0, 3]), ("p", "passthrough", [5, 1])], remainder="drop"
        )
    model = make_pipeline(ct, RandomForestClassifier(n_estimators=8, random_state=0)).fit(Xn, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, Xn, scorer=scorer)
    assert_parity(model, None, with_nan(X[:50], 0.5, seed=3), scorer=scorer)


def test_column_transformer_weights_are_applied_or_refused() -> None:
    X, y = dataset("binary")
    model = make_pipeline(
        ColumnTransformer(
            [("s", StandardScaler(), [0, 1, 2]), ("t", StandardScaler(), [3, 4])],
            transformer_weights={"s": 3.0, "t": 0.5},
        ),
        LogisticRegression(),
    ).fit(X, y)
    try:
        scorer = compile_scorer(model)
    except UnsupportedEstimatorError as exc:
        assert "transformer_weights" in str(exc)
        return
    assert_parity(model, None, X, scorer=scorer)


@pytest.mark.parametrize("with_std", [True, False])
@pytest.mark.parametrize("with_mean", [True, False])
def test_standard_scaler_options(with_mean: bool, with_std: bool) -> None:
    X, y = dataset("breast_cancer")
    lr = make_pipeline(
        StandardScaler(with_mean=with_mean, with_std=with_std), LogisticRegression(max_iter=200)
    ).fit(X, y)
    assert_parity(lr, None, X)
    rows = X[:3].copy()
    rows[1, 4] = np.nan
    assert_refused(lr, None, rows, match="x4")
    # NaN passes through the scaler to a tree, which routes it
    Xn = with_nan(X)
    tree = make_pipeline(
        StandardScaler(with_mean=with_mean, with_std=with_std),
        DecisionTreeClassifier(random_state=0),
    ).fit(Xn, y)
    assert_parity(tree, None, Xn)
    rows = X[:3].copy()
    rows[0, 2] = math.inf
    assert_refused(tree, None, rows)


def test_standard_scaler_constant_column_and_extremes() -> None:
    X, y = dataset("binary")
    X = X.copy()
    X[:, 2] = 7.0  # zero variance: scale_ is 1
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)
    rows = X[:5].copy()
    rows[:, 2] = [7.0, 0.0, 1e300, -1e300, 7.000000000000001]
    assert_parity(model, None, rows)


def test_pipeline_passthrough_and_none_steps() -> None:
    X, y = dataset("multi3")
    model = Pipeline(
        [
            ("scale", StandardScaler()),
            ("skip", "passthrough"),
            ("none", None),
            ("lr", LogisticRegression(max_iter=1000)),
        ]
    ).fit(X, y)
    assert_parity(model, None, X)


def test_separate_extractor_and_model() -> None:
    df, y = mixed_frame()
    extractor = preprocess().fit(df)
    model = RandomForestClassifier(n_estimators=10, random_state=0).fit(extractor.transform(df), y)
    scorer = compile_scorer(model, extractor)
    assert_parity(model, extractor, df, scorer=scorer)
    assert_parity(model, extractor, missing_each_column(df), scorer=scorer)
    assert_parity(model, extractor, with_unseen(df), scorer=scorer)


def _frame_from_rows(rows: list[dict[str, Any]]) -> pd.DataFrame:
    data: dict[str, Any] = {}
    for c in ["color", "a", "size", "b", "flag"]:
        values = [np.nan if r[c] is None else r[c] for r in rows]
        data[c] = pd.Series(values, dtype=object if c in CATS else np.float64)
    return pd.DataFrame(data)


NUMBERS = st.one_of(
    st.none(),
    st.floats(-50, 50, allow_nan=False),
    st.sampled_from([0.0, -0.0, 1e300, -1e300, math.inf, -math.inf, 1e-300]),
)


def _category(known: list[str]) -> Any:
    return st.one_of(st.none(), st.sampled_from(known), st.sampled_from(["never-seen", ""]))


MIXED_ROW = st.fixed_dictionaries(
    {
        "color": _category(COLORS),
        "a": NUMBERS,
        "size": _category(SIZES),
        "b": NUMBERS,
        "flag": _category(FLAGS),
    }
)


@functools.cache
def _mixed_models() -> dict[str, tuple[Any, Any]]:
    df, y = mixed_frame()
    out = {}
    for name, final in [
        ("lr", LogisticRegression()),
        ("rf", RandomForestClassifier(n_estimators=8, random_state=0)),
    ]:
        model = Pipeline([("pre", preprocess(drop="if_binary")), ("m", final)]).fit(df, y)
        out[name] = (model, compile_scorer(model))
    return out


@pytest.mark.parametrize("name", ["lr", "rf"])
@HYPOTHESIS
@given(rows=st.lists(MIXED_ROW, min_size=1, max_size=3))
def test_mixed_random_rows(name: str, rows: list[dict[str, Any]]) -> None:
    model, scorer = _mixed_models()[name]
    assert_same_outcome(model, None, _frame_from_rows(rows), scorer=scorer)


# -- the penguins reference artifacts ----------------------------------------------


@functools.cache
def _penguins() -> tuple[Any, Any, Any]:
    model = joblib.load(ARTIFACTS / "model.joblib")
    extractor = joblib.load(ARTIFACTS / "extractor.joblib")
    return model, extractor, compile_scorer(model, extractor)


def read_gate(name: str) -> pd.DataFrame:
    return pd.read_csv(
        GATE / name,
        dtype={"island": object, "sex": object},
        keep_default_na=False,
        na_values=[""],
    )


@pytest.mark.parametrize("name", ["e2e.csv", "confidence.csv"])
def test_penguins_gate_files(name: str) -> None:
    model, extractor, scorer = _penguins()
    df = read_gate(name)
    X = df[list(extractor.feature_names_in_)]
    ours = assert_parity(model, extractor, X, scorer=scorer)
    if name == "e2e.csv":
        assert ours.labels() == df["prediction"].tolist()
        expected = df[["proba_Adelie", "proba_Chinstrap", "proba_Gentoo"]].to_numpy()
        assert ours.proba is not None
        np.testing.assert_allclose(ours.proba, expected, rtol=0, atol=1e-9)


def test_penguins_missing_unseen_and_extremes() -> None:
    model, extractor, scorer = _penguins()
    X = read_gate("confidence.csv")[list(extractor.feature_names_in_)]
    base = X.head(5).copy()
    blocks = []
    for c in X.columns:
        block = base.copy()
        if c in ("island", "sex"):
            block[c] = block[c].astype(object)
        block[c] = np.nan
        blocks.append(block)
    unseen = base.copy()
    unseen["island"] = ["Anvers", "biscoe", "", " Dream", "Torgersen "]
    unseen["sex"] = ["MALE", "female", "other", "male", "x"]
    assert_parity(model, extractor, pd.concat([*blocks, unseen], ignore_index=True), scorer=scorer)
    for v in (0.0, -0.0, 1e-300, 1e30):
        rows = base.copy()
        rows["body_mass_g"] = v
        assert_parity(model, extractor, rows, scorer=scorer)
    for v in (math.inf, -math.inf, 1e300, -1e300):
        rows = base.copy()
        rows["bill_depth_mm"] = v
        err = assert_refused(model, extractor, rows, scorer=scorer)
        assert "bill_depth_mm" in str(err)


def test_penguins_records_refuse_wrong_types() -> None:
    _, _, scorer = _penguins()
    good = {
        "island": "Dream",
        "bill_length_mm": 40.0,
        "bill_depth_mm": 18.0,
        "flipper_length_mm": 190.0,
        "body_mass_g": 3800.0,
        "sex": "male",
    }
    assert len(scorer.score_records([good])) == 1
    for field, bad in [("island", 3.0), ("bill_length_mm", "40"), ("sex", True)]:
        with pytest.raises(InputError, match=field):
            scorer.score_records([{**good, field: bad}])


def test_tree_probability_ties_pick_the_first_class() -> None:
    """Leaves split evenly between classes: argmax takes the first, as numpy does."""
    X = np.array([[0.0], [0.0], [1.0], [1.0], [2.0], [2.0], [2.0], [2.0]])
    y = np.array(["b", "a", "c", "b", "a", "b", "c", "c"])
    tree = DecisionTreeClassifier(max_depth=2, random_state=0).fit(X, y)
    rows = np.array([[0.0], [1.0], [2.0], [0.5], [1.5]])
    proba = tree.predict_proba(rows)
    assert any(sorted(p)[-1] == sorted(p)[-2] for p in proba), "fixture: need a tied leaf"
    assert_parity(tree, None, rows)
    forest = RandomForestClassifier(n_estimators=4, max_depth=1, random_state=3).fit(X, y)
    assert_parity(forest, None, rows)


def test_pandas_default_string_dtype() -> None:
    """pandas 3 reads text as its ``str`` dtype (not object); missing is NaN."""
    df = pd.read_csv(ROOT / "resources" / "data" / "penguins.csv")
    inputs = [
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
    ]
    X, y = df[inputs], df["species"].astype(object)
    assert X["island"].dtype != object
    numeric = inputs[1:5]
    for final in (LogisticRegression(max_iter=1000), RandomForestClassifier(8, random_state=0)):
        model = Pipeline(
            [
                (
                    "pre",
                    ColumnTransformer(
                        [
                            ("num", make_pipeline(SimpleImputer(), StandardScaler()), numeric),
                            (
                                "cat",
                                make_pipeline(
                                    SimpleImputer(strategy="constant"),
                                    OneHotEncoder(handle_unknown="ignore"),
                                ),
                                ["island", "sex"],
                            ),
                        ]
                    ),
                ),
                ("m", final),
            ]
        ).fit(X, y)
        scorer = compile_scorer(model)
        assert_parity(model, None, X, scorer=scorer)
        rows = X.head(4).copy()
        rows.loc[0, "island"] = np.nan
        rows.loc[1, "sex"] = np.nan
        rows.loc[2, "island"] = "Anvers"
        rows.loc[3, "bill_depth_mm"] = np.nan
        assert_parity(model, None, rows, scorer=scorer)
