"""IterativeImputer compiles to what ``transform`` computes, step by step.

The initial imputation is SimpleImputer's (bit for bit); then each fitted step of
``imputation_sequence_`` predicts its feature from the current neighbour columns and
replaces only the cells missing in the input, clipped to the bounds. The estimators'
products are computed compensated where scikit-learn goes through BLAS, so the
imputed cells differ in the last bits (at most about 2e-16 relative, or absolute below
1: ``MAX_RELATIVE``); everything else, and the predictions of the model
after the imputer, agree as the build's parity check demands. Probes: every pattern
of missing cells over the five features (the all-missing row included, in a batch
with observed values), extremes, each imputation order, ``n_nearest_features``,
``skip_complete``, bounds, ``keep_empty_features``, ``add_indicator``, and the
estimators BayesianRidge, LinearRegression, Ridge, a tree ensemble and k-neighbours.
"""

from __future__ import annotations

import functools
import itertools
import math
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.ensemble import ExtraTreesRegressor
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (exposes the class)
from sklearn.impute import IterativeImputer
from sklearn.kernel_ridge import KernelRidge
from sklearn.linear_model import BayesianRidge, LinearRegression, LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.tree import DecisionTreeRegressor

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._parity import (
    assert_parity,
    assert_probes_catch,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    mutated,
)
from tests._transform_parity import bits_differ, run_ops

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

#: The kernels the final model reads the imputed features with.
MODEL_KERNELS = ("linear", "linear_dot2", "tree_sum")

#: The largest difference of an imputed cell, relative to its value (or to 1 below 1):
#: compensated products against BLAS, measured at most about 2e-16.
MAX_RELATIVE = 1e-14


@functools.cache
def data() -> tuple[np.ndarray, np.ndarray]:
    """Five diabetes features, 20% missing at random, one feature complete."""
    X, y = load_diabetes(return_X_y=True)
    X = X[:, [0, 2, 3, 8, 9]] * 10
    rng = np.random.RandomState(3)
    X[rng.rand(*X.shape) < 0.2] = np.nan
    X[:, 4] = load_diabetes().data[:, 9] * 10  # complete: skip_complete leaves it out
    return X, y


def patterns(X: np.ndarray) -> np.ndarray:
    """Complete rows with every subset of the features missing, the empty set to all."""
    base = np.nan_to_num(X[:4], nan=0.5)
    rows = []
    for k in range(X.shape[1] + 1):
        for cells in itertools.combinations(range(X.shape[1]), k):
            for row in base:
                r = row.copy()
                r[list(cells)] = np.nan
                rows.append(r)
    return np.array(rows)


def extremes(X: np.ndarray) -> list[tuple[str, np.ndarray]]:
    out = []
    for v in (0.0, -0.0, 1e-300, 1e12, -1e12, 1e300, -1e300, math.inf):
        block = X[:6].copy()
        block[:, 0] = v  # observed, predicting the others
        block[3:, 1] = np.nan
        out.append((f"x0={v!r}", block))
    return out


def imputed(scorer: Scorer, X: np.ndarray) -> np.ndarray:
    """The plan's transformed features: what the final model's op reads."""
    model_op = [op for op in scorer.plan.ops if op.kernel in MODEL_KERNELS][-1]
    return run_ops(scorer, X)[:, [int(c) for c in model_op.args[0]]]


def assert_imputed_close(model: Any, X: np.ndarray, scorer: Scorer, context: str) -> float:
    """The plan's imputation matches ``transform``: observed cells bit for bit, imputed
    ones within ``MAX_RELATIVE`` of their size (or of 1). Returns the largest relative gap."""
    theirs = model[:-1].transform(X)
    ours = imputed(scorer, X)
    assert ours.shape == theirs.shape, context
    n = X.shape[1]
    observed = np.zeros(ours.shape, dtype=bool)
    observed[:, :n] = ~np.isnan(X) if ours.shape[1] >= n else False
    if ours.shape[1] >= n:
        assert not bits_differ(ours[observed], theirs[observed]).any(), context
    gap = np.abs(ours - theirs) / np.maximum(np.abs(theirs), 1.0)
    gap[np.isnan(ours) & np.isnan(theirs)] = 0.0
    worst = float(np.max(gap)) if gap.size else 0.0
    assert worst <= MAX_RELATIVE, f"{context}: imputed values differ by {worst:.3g} relative"
    return worst


def check(model: Any, X: np.ndarray) -> float:
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer, context="training data")
    worst = assert_imputed_close(model, X, scorer, "training data")
    rows = patterns(X)
    assert_parity(model, None, rows, scorer=scorer, context="missing patterns")
    worst = max(worst, assert_imputed_close(model, rows, scorer, "missing patterns"))
    for name, block in extremes(X):
        accepted = assert_same_outcome(model, None, block, scorer=scorer, context=name)
        if accepted and np.all(np.isfinite(model[:-1].transform(block))):
            worst = max(worst, assert_imputed_close(model, block, scorer, name))
    return worst


ESTIMATORS = {
    "BayesianRidge": lambda: None,
    "LinearRegression": LinearRegression,
    "Ridge": lambda: Ridge(alpha=0.5),
    "ExtraTrees": lambda: ExtraTreesRegressor(n_estimators=4, max_depth=4, random_state=0),
    "KNeighbors": lambda: KNeighborsRegressor(n_neighbors=3),
}


@pytest.mark.parametrize("estimator", list(ESTIMATORS))
def test_estimators(estimator: str) -> None:
    X, y = data()
    imputer = IterativeImputer(estimator=ESTIMATORS[estimator](), max_iter=4, random_state=0)
    model = make_pipeline(imputer, DecisionTreeRegressor(max_depth=6, random_state=0)).fit(X, y)
    assert len(model[0].imputation_sequence_) > 0
    check(model, X)


@pytest.mark.parametrize(
    "options",
    [
        {"imputation_order": "ascending"},
        {"imputation_order": "descending", "n_nearest_features": 2},
        {"imputation_order": "roman", "n_nearest_features": 3},
        {"imputation_order": "arabic", "skip_complete": True},
        {"imputation_order": "random", "n_nearest_features": 2},
        {"min_value": -0.5, "max_value": 0.5},
        {"min_value": [-1, -0.2, -0.3, -1, -1], "max_value": [1, 0.1, 0.2, 1, 1]},
        {"initial_strategy": "median", "add_indicator": True},
        {"initial_strategy": "constant", "fill_value": 0.25, "skip_complete": True},
        {"initial_strategy": "most_frequent", "max_iter": 1},
        {"max_iter": 0},
    ],
    ids=repr,
)
def test_options(options: dict[str, Any]) -> None:
    X, y = data()
    imputer = IterativeImputer(max_iter=options.pop("max_iter", 5), random_state=1, **options)
    model = make_pipeline(imputer, Ridge(alpha=1e-3)).fit(X, y)
    check(model, X)


@pytest.mark.parametrize("keep_empty", [False, True], ids=["drop_empty", "keep_empty"])
@pytest.mark.parametrize("indicator", [False, True], ids=["", "add_indicator"])
def test_empty_features(keep_empty: bool, indicator: bool) -> None:
    X, y = data()
    X = X.copy()
    X[:, 1] = np.nan  # missing in all of training
    imputer = IterativeImputer(
        keep_empty_features=keep_empty, add_indicator=indicator, max_iter=3, random_state=0
    )
    model = make_pipeline(imputer, LinearRegression()).fit(X, y)
    width = X.shape[1] - (0 if keep_empty else 1)
    assert model[-1].n_features_in_ == width + (X.shape[1] - 1 if indicator else 0)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    rows = patterns(X)
    rows[:, 1] = np.where(np.arange(len(rows)) % 2, rows[:, 1], 0.75)  # seen in half the rows
    assert_parity(model, None, rows, scorer=scorer)
    theirs = model[:-1].transform(rows)
    assert np.max(np.abs(imputed(scorer, rows) - theirs)) <= MAX_RELATIVE


def test_inside_a_pipeline_before_a_classifier() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = X[:, :8].copy()
    rng = np.random.RandomState(5)
    X[rng.rand(*X.shape) < 0.25] = np.nan
    model = Pipeline(
        [
            ("impute", IterativeImputer(n_nearest_features=4, max_iter=6, random_state=0)),
            ("clf", LogisticRegression(max_iter=5000)),
        ]
    ).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    assert_imputed_close(model, X, scorer, "breast_cancer")
    rows = np.vstack([X[:40], np.full((3, X.shape[1]), np.nan)])
    assert_parity(model, None, rows, scorer=scorer)


def test_an_all_missing_row_is_imputed_as_in_a_batch() -> None:
    """Alone, an all-missing row stops at the initial imputation in scikit-learn (its whole
    batch is missing); the plan scores rows one at a time, as in any larger batch."""
    X, y = data()
    model = make_pipeline(IterativeImputer(max_iter=3, random_state=0), Ridge()).fit(X, y)
    scorer = compile_scorer(model)
    empty = np.full((1, X.shape[1]), np.nan)
    in_batch = model[:-1].transform(np.vstack([X[:1], empty]))[1]
    alone = model[:-1].transform(empty)[0]
    assert not np.allclose(in_batch, alone)  # the batch-wide rule this plan cannot follow
    ours = imputed(scorer, empty)[0]
    assert np.max(np.abs(ours - in_batch)) <= MAX_RELATIVE


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.lists(
            st.one_of(st.just(math.nan), st.floats(-5, 5, allow_nan=False)),
            min_size=5,
            max_size=5,
        ),
        min_size=1,
        max_size=8,
    )
)
def test_any_rows(rows: list[list[float]]) -> None:
    X = np.array(rows + [[0.1] * 5])  # one observed row: the batch is never all missing
    model, scorer = _bayesian_ridge_model()
    assert_parity(model, None, X, scorer=scorer)
    assert_imputed_close(model, X, scorer, "generated rows")


@functools.cache
def _bayesian_ridge_model() -> tuple[Any, Scorer]:
    X, y = data()
    model = make_pipeline(IterativeImputer(max_iter=4, random_state=0), Ridge()).fit(X, y)
    return model, compile_scorer(model)


@pytest.mark.parametrize(
    ("imputer", "match"),
    [
        (IterativeImputer(sample_posterior=True, max_iter=2), "sample_posterior"),
        (IterativeImputer(estimator=KernelRidge(), max_iter=2), "KernelRidge"),
        (IterativeImputer(missing_values=-1.0, max_iter=2), "missing_values"),
    ],
    ids=["sample_posterior", "estimator", "missing_values"],
)
def test_refusals(imputer: IterativeImputer, match: str) -> None:
    X, y = data()
    if imputer.missing_values == -1.0:
        X = np.nan_to_num(X, nan=-1.0)
    model = make_pipeline(imputer, Ridge()).fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=match) as err:
        compile_estimators(model)
    assert "valid:" in str(err.value)


def test_infinity_is_refused_naming_the_imputer() -> None:
    model, scorer = _bayesian_ridge_model()
    X, _ = data()
    rows = X[:3].copy()
    rows[1, 2] = math.inf
    err = assert_refused(model, None, rows, scorer=scorer)
    assert "IterativeImputer" in str(err) and "record 2" in str(err)


def test_bayesian_ridge_default_is_the_estimator() -> None:
    X, y = data()
    model = make_pipeline(IterativeImputer(max_iter=2, random_state=0), Ridge()).fit(X, y)
    assert all(type(t.estimator) is BayesianRidge for t in model[0].imputation_sequence_)
    kernels = [op["kernel"] for op in compile_estimators(model).header["ops"]]
    assert kernels.count("impute_predicted") == len(model[0].imputation_sequence_)


@pytest.mark.parametrize(
    ("arg", "change"),
    [
        (2, lambda lo: np.full_like(lo, -np.inf)),  # no lower bound
        (0, lambda src: src[[2, 1, 2]]),  # "missing" read from the current column: never NaN
    ],
    ids=["unclipped", "mask"],
)
def test_probes_catch_a_wrong_step(arg: int, change: Any) -> None:
    X, y = data()
    imputer = IterativeImputer(min_value=-0.1, max_value=0.5, max_iter=3, random_state=0)
    model = make_pipeline(imputer, Ridge()).fit(X, y)
    compiled = compile_estimators(model)
    wrong = mutated(compiled, "impute_predicted", arg, change)
    assert_probes_catch(model, patterns(X), compile_scorer(model), wrong)
