"""GradientBoosting classifiers and regressors compile to plans that score exactly as scikit-learn.

What is checked, for every loss and init option the converter accepts:
predict, predict_proba and decision_function on the training data, on inputs
exactly at / one float32 step either side of every split threshold, on
extreme values; NaN, infinity and float32 overflow are refused by both
(GradientBoosting validates X as float32 with ``ensure_all_finite=True``, so it
neither trains nor predicts with NaN). Init estimators we cannot compile are
refused at compile time.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.dummy import DummyClassifier, DummyRegressor
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestRegressor,
)
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.tree import DecisionTreeClassifier, DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._parity import (
    assert_parity,
    assert_probes_catch,
    assert_refused,
    compile_scorer,
    mutated,
    replace,
    to_records,
)
from tests.test_sklearn_trees_converter import (
    FINITE_EXTREMES,
    HYPOTHESIS,
    OVERFLOWING,
    _set,
    assert_corruption_refused,
    assert_full_parity,
    dataset,
    nan_rows,
    probes,
    splits,
    value_rows,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


GB = {"n_estimators": 25, "max_depth": 3, "random_state": 0}

FACTORIES: dict[str, Any] = {
    "GBC": lambda: GradientBoostingClassifier(**GB),
    "GBC(exponential)": lambda: GradientBoostingClassifier(loss="exponential", **GB),
    "GBC(init=zero)": lambda: GradientBoostingClassifier(init="zero", **GB),
    "GBC(init=most_frequent)": lambda: GradientBoostingClassifier(
        init=DummyClassifier(strategy="most_frequent"), **GB
    ),
    "GBC(init=uniform,lr=0.3,subsample)": lambda: GradientBoostingClassifier(
        init=DummyClassifier(strategy="uniform"),
        learning_rate=0.3,
        subsample=0.7,
        max_features=0.5,
        **GB,
    ),
    "GBC(early stopping)": lambda: GradientBoostingClassifier(
        n_iter_no_change=3,
        validation_fraction=0.2,
        n_estimators=200,
        max_depth=2,
        random_state=0,
    ),
    "GBR(squared_error)": lambda: GradientBoostingRegressor(**GB),
    "GBR(absolute_error)": lambda: GradientBoostingRegressor(loss="absolute_error", **GB),
    "GBR(huber)": lambda: GradientBoostingRegressor(loss="huber", alpha=0.8, **GB),
    "GBR(quantile)": lambda: GradientBoostingRegressor(loss="quantile", alpha=0.3, **GB),
    "GBR(init=zero)": lambda: GradientBoostingRegressor(init="zero", **GB),
    "GBR(init=DummyRegressor median)": lambda: GradientBoostingRegressor(
        init=DummyRegressor(strategy="median"), **GB
    ),
    "GBR(init=DecisionTreeRegressor)": lambda: GradientBoostingRegressor(
        init=DecisionTreeRegressor(max_depth=4, random_state=0), **GB
    ),
    "GBR(init=RandomForestRegressor)": lambda: GradientBoostingRegressor(
        init=RandomForestRegressor(n_estimators=3, max_depth=4, random_state=0), loss="huber", **GB
    ),
}

CLASSIFIER_DATA = ("binary", "multi3", "breast_cancer", "iris")
CASES = [
    (kind, ds)
    for kind in FACTORIES
    for ds in (CLASSIFIER_DATA if kind.startswith("GBC") else ("regression", "diabetes"))
    # the exponential loss is binary only
    if not (kind == "GBC(exponential)" and ds in ("multi3", "iris"))
]


def _case_id(case: tuple[str, str]) -> str:
    return "-".join(case)


@functools.cache
def fitted(kind: str, ds: str) -> tuple[Any, Scorer]:
    X, y = dataset(ds)
    est = FACTORIES[kind]().fit(X, y)
    return est, compile_scorer(est)


def _extras(est: Any) -> tuple[tuple[str, ...], dict[str, tuple]]:
    if not hasattr(est, "classes_"):
        return (), {}
    labels = () if len(est.classes_) == 2 else tuple(map(str, est.classes_))
    return ("decision_function",), {"decision_function": labels}


def _trees(est: Any) -> list[Any]:
    trees = [t.tree_ for t in est.estimators_.ravel()]
    init = est.init_
    if isinstance(init, DecisionTreeRegressor):
        trees.append(init.tree_)
    elif isinstance(init, RandomForestRegressor):
        trees += [t.tree_ for t in init.estimators_]
    return trees


def check(est: Any, X: np.ndarray, scorer: Scorer, context: str = "") -> None:
    names, labels = _extras(est)
    assert_full_parity(est, X, scorer, names, labels, context)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_training_data(case: tuple[str, str]) -> None:
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    check(est, X, scorer, "training data")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_thresholds_and_float32_neighbours(case: tuple[str, str]) -> None:
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = splits(_trees(est))
    rows = probes(split_list, X, limit=250)
    assert len(rows) >= 3 * min(250, len(split_list))
    check(est, rows, scorer, "threshold probes")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_nan_and_overflow_are_refused(case: tuple[str, str]) -> None:
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    last = X.shape[1] - 1
    rows = nan_rows(X, 2)
    for r in range(0, len(rows), 2):
        err = assert_refused(est, None, rows[r : r + 2], scorer=scorer)
        assert "missing value" in str(err)
    for v in OVERFLOWING:
        rows = np.array(X[:3], dtype=np.float64)
        rows[2, last] = v
        err = assert_refused(est, None, rows, scorer=scorer)
        assert "record 3" in str(err) and f"x{last}" in str(err)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_extreme_values(case: tuple[str, str]) -> None:
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    check(est, value_rows(X, FINITE_EXTREMES, range(X.shape[1])), scorer, "extremes")


def test_probes_catch_a_plan_comparing_in_float64() -> None:
    """The probes are sharp: the plan with its float32 cast turned off (``cast32``) fails
    the build's parity check on them."""
    est, scorer = fitted("GBR(squared_error)", "diabetes")
    X, _ = dataset("diabetes")
    wrong = mutated(compile_estimators(est), "tree_sum", -1, replace(1, 0))
    assert_probes_catch(est, probes(splits(_trees(est)), X, limit=200), scorer, wrong)


def test_binary_decision_exactly_zero_predicts_the_second_class() -> None:
    """GradientBoostingClassifier predicts classes_[raw >= 0] (not > 0, unlike HGB)."""
    X, y = dataset("binary")
    labels = np.array(["no", "yes"])[y]
    est = GradientBoostingClassifier(
        init="zero", learning_rate=0.0, n_estimators=3, random_state=0
    ).fit(X, labels)
    assert (est.decision_function(X[:5]) == 0).all()
    ours = assert_full_parity(est, X[:5], compile_scorer(est), *_extras(est))
    assert ours.labels() == ["yes"] * 5


def test_string_classes_multiclass() -> None:
    X, y = dataset("multi3")
    labels = np.array(["c", "a", "b"])[y]
    est = GradientBoostingClassifier(n_estimators=10, random_state=0).fit(X, labels)
    scorer = compile_scorer(est)
    check(est, X, scorer)
    check(est, probes(splits(_trees(est)), X, limit=100), scorer)


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_raw_values_are_bit_for_bit(case: tuple[str, str]) -> None:
    """Per output, raw = init + lr * v1 + lr * v2 + ... in stage order, exactly: the
    regression value and decision_function equal scikit-learn's to the last bit."""
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    ours = scorer.score_records(to_records(scorer, X))
    if ours.values is not None:
        assert np.array_equal(ours.values, est.predict(X))
    else:
        (raw,) = [v for extra, v in ours.extras if extra.name == "decision_function"]
        assert np.array_equal(raw.reshape(len(X), -1), est.decision_function(X).reshape(len(X), -1))


def test_inside_a_pipeline() -> None:
    X, y = dataset("breast_cancer")
    model = make_pipeline(StandardScaler(), GradientBoostingClassifier(**GB)).fit(X, y)
    assert_parity(model, None, X, scorer=compile_scorer(model))


@pytest.mark.parametrize(
    "make, fit_on, match",
    [
        (
            lambda: GradientBoostingClassifier(init=LogisticRegression(), n_estimators=3),
            "binary",
            "init=LogisticRegression",
        ),
        (
            lambda: GradientBoostingClassifier(
                init=DecisionTreeClassifier(max_depth=2), n_estimators=3
            ),
            "binary",
            "init=DecisionTreeClassifier",
        ),
        (
            lambda: GradientBoostingClassifier(
                init=DummyClassifier(strategy="stratified"), n_estimators=3
            ),
            "binary",
            "init=DummyClassifier",
        ),
        (
            lambda: GradientBoostingRegressor(
                init=HistGradientBoostingRegressor(max_iter=3), n_estimators=3
            ),
            "regression",
            "init=HistGradientBoostingRegressor",
        ),
        (
            lambda: GradientBoostingRegressor(
                init=make_pipeline(StandardScaler(), DecisionTreeRegressor()), n_estimators=3
            ),
            "regression",
            "init=Pipeline",
        ),
    ],
    ids=["logistic", "tree-classifier", "stratified", "hgb", "pipeline"],
)
def test_init_estimators_we_cannot_compile_are_refused(make: Any, fit_on: str, match: str) -> None:
    X, y = dataset(fit_on)
    est = make().fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=match) as info:
        compile_estimators(est)
    assert "valid:" in str(info.value)


def test_refusal_names_the_model() -> None:
    est, scorer = fitted("GBR(init=DecisionTreeRegressor)", "diabetes")
    X, _ = dataset("diabetes")
    rows = np.array(X[:2], dtype=np.float64)
    rows[1, 3] = math.nan
    err = assert_refused(est, None, rows, scorer=scorer)
    assert "GradientBoostingRegressor" in str(err) and "record 2" in str(err)


def _first_internal(compiled: Any) -> int:
    op = [op for op in compiled.header["ops"] if op["kernel"] == "tree_sum"][-1]
    nodes = compiled.arrays[op["args"][5]["array"]]
    return int(np.flatnonzero(nodes[:, 1] != np.arange(len(nodes)))[0])


@pytest.mark.parametrize(
    "arg, change, match",
    [
        (2, lambda a: a + 1000, "start columns out of range"),  # outside the workspace
        (2, lambda a: np.append(a, a), "one value"),  # two start columns for one output
        (3, lambda a: np.append(a, 0.0), "one value"),
        (4, _set(-1, 7), "tree output index"),
        (4, lambda a: a[:0], "non-empty"),
        (4, _set(0, 10**9), "roots or depths out of range"),
        (5, _set(0, 999), "feature index"),
        (5, _set(0, 1 << 26), "feature words"),
        (6, lambda a: a[:-1], "one threshold per node"),
        (9, lambda v: 0.0, "divisor"),
        (10, lambda v: 2, "cast32"),
    ],
)
def test_corrupted_boost_plans_are_refused(arg: int, change: Any, match: str) -> None:
    est, _ = fitted("GBR(init=DecisionTreeRegressor)", "diabetes")
    assert_corruption_refused(compile_estimators(est), "tree_sum", arg, change, match)


def test_corrupted_boost_children_are_refused() -> None:
    est, _ = fitted("GBC", "multi3")
    compiled = compile_estimators(est)
    node = _first_internal(compiled)
    # a child pointing back would walk out of the tree; past the end, out of the table
    for child in (node - 1, 10**6):
        assert_corruption_refused(compiled, "tree_sum", 5, _set(2 * node + 1, child), "children")
    # a leaf (its own child) with a finite threshold would step off it
    assert_corruption_refused(compiled, "tree_sum", 5, _set(2 * node + 1, node), "leaf")


@pytest.mark.parametrize(
    "case", [("GBC", "multi3"), ("GBR(init=DecisionTreeRegressor)", "diabetes")], ids=_case_id
)
@HYPOTHESIS
@given(data=st.data())
def test_random_rows_around_thresholds(case: tuple[str, str], data: Any) -> None:
    est, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = splits(_trees(est))
    rows = []
    for _ in range(data.draw(st.integers(1, 10), label="rows")):
        row = np.array(X[data.draw(st.integers(0, len(X) - 1), label="base")], dtype=np.float64)
        for _ in range(data.draw(st.integers(1, 5), label="features moved")):
            f, thr = split_list[data.draw(st.integers(0, len(split_list) - 1), label="split")]
            step = data.draw(st.integers(-2, 2), label="float32 steps")
            v = np.float32(thr)
            for _ in range(abs(step)):
                v = np.nextafter(v, np.float32(np.inf if step > 0 else -np.inf))
            row[f] = thr if step == 0 and data.draw(st.booleans(), label="exact") else float(v)
        rows.append(row)
    check(est, np.array(rows), scorer)
