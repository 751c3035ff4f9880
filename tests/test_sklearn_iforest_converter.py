"""IsolationForest compiles to a plan that scores exactly as scikit-learn.

Checked: predict (-1 / 1), score_samples and decision_function on the training
data, on inputs at / one float32 step either side of every split threshold, with
NaN in each feature (forests trained with and without NaN), and on extreme values
(IsolationForest validates with ``ensure_all_finite=False``: NaN, +-inf and values
that overflow float32 are all accepted, so the plan refuses nothing). Options:
contamination 'auto' and a fraction, max_features below the number of features
(trees on column subsets), bootstrap, max_samples small enough that the
normalising path length is 0 or 1.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import IsolationForest
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from bundler.compiler import compile_estimators
from mlbundle_runtime.scorer import Scorer
from tests._parity import (
    assert_probes_catch,
    compile_scorer,
    kernels,
    mutated,
    written_plan,
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
    with_nan,
)

EXTRAS = ("score_samples", "decision_function")
LABELS = {"score_samples": (), "decision_function": ()}


pytestmark = pytest.mark.usefixtures("quiet_sklearn")


FACTORIES: dict[str, Any] = {
    "auto": lambda: IsolationForest(n_estimators=40, random_state=0),
    "contamination=0.1": lambda: IsolationForest(
        n_estimators=40, contamination=0.1, random_state=0
    ),
    "max_features=0.5": lambda: IsolationForest(
        n_estimators=40, max_features=0.5, contamination=0.05, random_state=0
    ),
    "max_features=3,bootstrap": lambda: IsolationForest(
        n_estimators=30, max_features=3, bootstrap=True, random_state=0
    ),
    "max_samples=2": lambda: IsolationForest(n_estimators=20, max_samples=2, random_state=0),
    "max_samples=1": lambda: IsolationForest(n_estimators=5, max_samples=1, random_state=0),
}

CASES = [
    (kind, ds, nan)
    for kind in FACTORIES
    for ds in (
        ("breast_cancer", "diabetes") if kind in ("auto", "max_features=0.5") else ("binary",)
    )
    for nan in (False, True)
]


def _case_id(case: tuple[str, str, bool]) -> str:
    kind, ds, nan = case
    return f"{kind}-{ds}-{'nan' if nan else 'complete'}"


@functools.cache
def fitted(kind: str, ds: str, nan: bool) -> tuple[Any, np.ndarray, Scorer]:
    X, _ = dataset(ds)
    Xtrain = with_nan(X) if nan else X
    est = FACTORIES[kind]().fit(Xtrain)
    return est, Xtrain, compile_scorer(est)


def _splits(est: Any) -> list[tuple[int, float]]:
    subsample = est._max_features != est.n_features_in_
    return splits(
        [t.tree_ for t in est.estimators_], est.estimators_features_ if subsample else None
    )


def check(est: Any, X: Any, scorer: Scorer, context: str = "") -> Any:
    ours = assert_full_parity(est, X, scorer, EXTRAS, LABELS, context)
    assert set(ours.labels()) <= {-1, 1}
    return ours


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_training_data(case: tuple[str, str, bool]) -> None:
    est, Xtrain, scorer = fitted(*case)
    ours = check(est, Xtrain, scorer, "training data")
    if case[0] == "contamination=0.1":
        assert -1 in ours.labels() and 1 in ours.labels()


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_thresholds_and_float32_neighbours(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = _splits(est)
    if case[0] == "max_samples=1":
        assert split_list == []  # single-leaf trees: every score is -0.5
        return
    rows = probes(split_list, X, limit=300)
    assert len(rows) >= 3 * min(300, len(split_list))
    check(est, rows, scorer, "threshold probes")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_nan_in_each_feature(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    check(est, nan_rows(X), scorer, "NaN rows")


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_extreme_values_are_all_accepted(case: tuple[str, str, bool]) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    rows = value_rows(X, (*FINITE_EXTREMES, *OVERFLOWING), range(X.shape[1]))
    check(est, rows, scorer, "extremes")


def test_feature_subsets_are_mapped() -> None:
    """With max_features < n_features the trees index column subsets; sanity for the tests."""
    est, _, _ = fitted("max_features=0.5", "breast_cancer", False)
    feats = [tuple(f) for f in est.estimators_features_]
    assert len(set(feats)) > 1 and all(len(f) < est.n_features_in_ for f in feats)


def test_nan_trained_forests_use_both_missing_directions() -> None:
    seen = set()
    for kind, ds, nan in CASES:
        if nan:
            est, _, _ = fitted(kind, ds, nan)
            for tree in est.estimators_:
                t = tree.tree_
                seen.update(t.missing_go_to_left[t.children_left >= 0].tolist())
    assert seen == {0, 1}


def test_missing_direction_matters_for_the_comparison() -> None:
    est, _, _ = fitted("auto", "breast_cancer", True)
    X, _ = dataset("breast_cancer")
    compiled = compile_estimators(est)
    (op,) = [op for op in compiled.header["ops"] if op["kernel"] == "iforest"]
    key = op["args"][7]["array"]  # missing_left
    compiled.arrays[key] = 1 - compiled.arrays[key]
    wrong = Scorer(written_plan(compiled), kernels())
    with pytest.raises(AssertionError):
        check(est, nan_rows(X, 10), wrong)


def test_probes_catch_a_plan_with_float32_thresholds() -> None:
    """The probes are sharp: the plan with its thresholds rounded to float32 (the kernel
    compares ``float32(x) <= threshold`` with scikit-learn's float64 thresholds) fails
    the build's parity check on them."""
    est, _, scorer = fitted("auto", "diabetes", False)
    X, _ = dataset("diabetes")
    wrong = mutated(
        compile_estimators(est), "iforest", 4, lambda t: t.astype(np.float32).astype(np.float64)
    )
    assert_probes_catch(est, probes(_splits(est), X, limit=300), scorer, wrong)


def test_decision_exactly_zero_is_an_inlier() -> None:
    """predict is -1 only where decision_function < 0: with max_samples=1 every score is
    -0.5, so offset_ = -0.5 puts every decision at exactly 0."""
    est, Xtrain, scorer = fitted("max_samples=1", "binary", False)
    assert (est.decision_function(Xtrain[:5]) == 0).all()
    assert check(est, Xtrain[:5], scorer).labels() == [1] * 5


def test_sparse_input_sends_nan_right() -> None:
    """On CSR input scikit-learn's tree traversal has no missing branch: NaN goes right."""
    rng = np.random.RandomState(0)
    n = 300
    df = pd.DataFrame(
        {
            "code": pd.Series(rng.choice([f"k{i}" for i in range(30)], n), dtype=object),
            "a": rng.randn(n),
            "b": rng.randn(n),
        }
    )
    model = make_pipeline(
        ColumnTransformer(
            [("c", OneHotEncoder(handle_unknown="ignore"), ["code"])], remainder="passthrough"
        ),
        IsolationForest(n_estimators=30, random_state=0),
    ).fit(df)
    q = pd.concat([df.head(40)] * 2, ignore_index=True)
    q.loc[:39, "a"] = np.nan
    q.loc[40:, "b"] = np.nan
    Xt = model[0].transform(q)
    assert model[0].sparse_output_ and hasattr(Xt, "toarray")
    iso = model[-1]
    # sharp: the dense rule (missing_go_to_left) would score these rows differently
    assert np.abs(iso.score_samples(Xt) - iso.score_samples(Xt.toarray())).max() > 1e-3
    scorer = compile_scorer(model)
    assert_full_parity(model, df, scorer, EXTRAS, LABELS)
    assert_full_parity(model, q, scorer, EXTRAS, LABELS)


@pytest.mark.parametrize(
    "arg, change, match",
    [
        (1, lambda a: a[:1], "two destination columns"),
        (7, lambda a: a[:-1], "node arrays differ"),  # missing_left
        (8, lambda a: a[:-1], "leaf values"),
        (3, _set(0, 10**6), "feature index"),
        (2, _set(-1, -5), "roots out of range"),
    ],
)
def test_corrupted_iforest_plans_are_refused(arg: int, change: Any, match: str) -> None:
    est, _, _ = fitted("max_features=0.5", "breast_cancer", True)
    assert_corruption_refused(compile_estimators(est), "iforest", arg, change, match)


def test_corrupted_iforest_children_are_refused() -> None:
    est, _, _ = fitted("auto", "diabetes", False)
    compiled = compile_estimators(est)
    op = next(op for op in compiled.header["ops"] if op["kernel"] == "iforest")
    left = compiled.arrays[op["args"][5]["array"]]
    node = int(np.flatnonzero(left >= 0)[3])
    for arg in (5, 6):
        assert_corruption_refused(compiled, "iforest", arg, _set(node, node - 1), "children")


@pytest.mark.parametrize("case", [("max_features=0.5", "breast_cancer", True)], ids=_case_id)
@HYPOTHESIS
@given(data=st.data())
def test_random_rows_around_thresholds(case: tuple[str, str, bool], data: Any) -> None:
    est, _, scorer = fitted(*case)
    X, _ = dataset(case[1])
    split_list = _splits(est)
    rows = []
    for _ in range(data.draw(st.integers(1, 10), label="rows")):
        row = np.array(X[data.draw(st.integers(0, len(X) - 1), label="base")], dtype=np.float64)
        for _ in range(data.draw(st.integers(1, 5), label="features moved")):
            f, thr = split_list[data.draw(st.integers(0, len(split_list) - 1), label="split")]
            move = data.draw(st.sampled_from(["exact", "nan", "inf", -1, 1]), label="move")
            if move == "exact":
                row[f] = thr
            elif move == "nan":
                row[f] = math.nan
            elif move == "inf":
                row[f] = data.draw(st.sampled_from([math.inf, -math.inf, 1e300]), label="big")
            else:
                row[f] = float(np.nextafter(np.float32(thr), np.float32(move * np.inf)))
        rows.append(row)
    check(est, np.array(rows), scorer)
