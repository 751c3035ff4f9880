"""Kernel SVMs (SVC, NuSVC, SVR, NuSVR, OneClassSVM) compile to plans matching scikit-learn.

Checked: predict (libsvm's one-vs-one votes, or the ovr argmax with break_ties),
predict_proba (Platt sigmoids and libsvm's iterative pairwise coupling) and
decision_function (binary sign flip, ovr transform, raw ovo) within 1e-9, labels
identical. libsvm takes its dot products from BLAS ``ddot`` and the plan sums them in
order, so values agree to the last bits; the largest difference seen is checked to
stay far below the bar. Outputs that reach 1e300 on extreme inputs are compared
relatively (1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse
from sklearn.datasets import (
    load_breast_cancer,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC, SVR, NuSVC, NuSVR, OneClassSVM

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scores
from tests._data import datasets
from tests._parity import TOL, assert_parity, assert_refused, compile_scorer, to_records

#: Largest difference seen in practice, relative to max(1, |value|); the bar is 1e-9 absolute.
EXPECTED_MAX = 1e-10


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("svm")


def compare_extras(model, ours: Scores, X: np.ndarray, tol: float = TOL) -> float:
    """decision_function / score_samples as scikit-learn returns them.

    Returns the largest difference relative to max(1, |value|).
    """
    worst = 0.0
    assert ours.extras, "the plan exposes no decision_function"
    for extra, values in ours.extras:
        want = np.asarray(getattr(model, extra.name)(X), dtype=np.float64)
        got = values.reshape(want.shape)
        diff = np.abs(got - want)
        assert (diff <= tol).all(), f"{extra.name} differs by up to {diff.max()}"
        worst = max(worst, float((diff / np.maximum(1.0, np.abs(want))).max(initial=0.0)))
    return worst


def check(model, X: np.ndarray) -> float:
    """Parity of labels / probabilities / values and extras; the largest relative difference."""
    scorer = compile_scorer(model)
    ours = assert_parity(model, None, X, scorer=scorer)
    worst = 0.0
    if ours.extras:
        worst = compare_extras(model, ours, X)
    if ours.proba is not None:
        worst = max(worst, float(np.abs(ours.proba - model.predict_proba(X)).max()))
    if ours.values is not None:
        want = model.predict(X)
        rel = np.abs(ours.values - want) / np.maximum(1.0, np.abs(want))
        worst = max(worst, float(rel.max()))
    return worst


KERNELS = [
    {"kernel": "linear"},
    {"kernel": "poly", "degree": 3, "gamma": "auto", "coef0": 0.5},
    {"kernel": "poly", "degree": 2, "gamma": 0.1},
    {"kernel": "rbf"},
    {"kernel": "rbf", "gamma": "auto"},
    {"kernel": "sigmoid", "gamma": 0.01, "coef0": -0.2},
]


def kernel_id(k: dict) -> str:
    return "-".join(str(v) for v in k.values())


@pytest.mark.parametrize("params", KERNELS, ids=kernel_id)
@pytest.mark.parametrize("data", ["iris", "cancer", "multi4"])
@pytest.mark.parametrize("shape", ["ovr", "ovo"])
def test_svc_matches(params: dict, data: str, shape: str) -> None:
    X, y = dataset(data)
    model = SVC(decision_function_shape=shape, probability=True, random_state=0, **params)
    model.fit(X, y)
    assert check(model, X) <= EXPECTED_MAX


@pytest.mark.parametrize("params", KERNELS[::2], ids=kernel_id)
@pytest.mark.parametrize("data", ["iris", "multi4"])
def test_svc_break_ties_and_no_probability(params: dict, data: str) -> None:
    X, y = dataset(data)
    model = SVC(break_ties=True, **params).fit(X, y)
    assert check(model, X) <= EXPECTED_MAX
    assert compile_scorer(model).plan.output.proba == ()


@pytest.mark.parametrize("params", KERNELS[::2], ids=kernel_id)
@pytest.mark.parametrize("data", ["iris", "cancer"])
def test_nu_svc_matches(params: dict, data: str) -> None:
    X, y = dataset(data)
    model = NuSVC(nu=0.3, probability=True, random_state=1, **params).fit(X, y)
    assert check(model, X) <= EXPECTED_MAX


@pytest.mark.parametrize("params", KERNELS, ids=kernel_id)
@pytest.mark.parametrize("data", ["diabetes", "regression"])
@pytest.mark.parametrize("cls", [SVR, NuSVR])
def test_svr_matches(params: dict, data: str, cls) -> None:
    X, y = dataset(data)
    model = cls(**params).fit(X, y)
    assert check(model, X) <= EXPECTED_MAX


@pytest.mark.parametrize("params", KERNELS[::2], ids=kernel_id)
def test_one_class_svm_matches(params: dict) -> None:
    X, _ = dataset("cancer")
    model = OneClassSVM(nu=0.2, **params).fit(X)
    scorer = compile_scorer(model)
    ours = scorer.score_records(to_records(scorer, X))
    assert ours.labels() == model.predict(X).tolist()
    assert compare_extras(model, ours, X) <= EXPECTED_MAX


@pytest.mark.parametrize(
    "intercept",
    [[1.0, -1.0, 1.0], [0.0, 0.0, 0.0], [-0.0, 2.0, -3.0], [0.0, -1.0, 0.0]],
    ids=["cycle", "zeros", "negzero", "mixed"],
)
@pytest.mark.parametrize("break_ties", [False, True])
def test_vote_tie_rules(intercept: list[float], break_ties: bool) -> None:
    """Pair values forced by the intercepts: a three-way vote tie goes to the first class,
    a value of exactly 0 votes the pair's second class in predict (libsvm: > 0) but its
    first class in the ovr decision function (scikit-learn: not < 0)."""
    X, y = dataset("iris")
    model = SVC(kernel="rbf", break_ties=break_ties, probability=True, random_state=0)
    model.fit(X, y)
    model._dual_coef_[:] = 0.0
    model._intercept_[:] = intercept
    model.intercept_[:] = intercept
    check(model, X[:20])


@pytest.mark.parametrize("cls", [SVC, SVR])
def test_extreme_values(cls) -> None:
    X, y = dataset("iris")
    rows = []
    for value in (0.0, 1e300, -1e300, 1e-300, 1e160, 1.7e308):
        for j in range(X.shape[1]):
            row = X[10 * j].copy()
            row[j] = value
            rows.append(row)
    R = np.array(rows)
    for params in KERNELS:
        model = cls(**params).fit(X, y)
        scorer = compile_scorer(model)
        ours = scorer.score_records(to_records(scorer, R))
        if cls is SVC:
            assert ours.labels() == model.predict(R).tolist(), params
            got, want = ours.extras[0][1], model.decision_function(R)
        else:
            got, want = ours.values, model.predict(R)
        got = got.reshape(want.shape)
        assert np.allclose(got, want, rtol=1e-12, atol=1e-9, equal_nan=True), params


def test_probabilities_of_an_overflowing_kernel() -> None:
    """A cubic kernel at 1e300 overflows and the decision values are NaN: libsvm's own
    max() turns each NaN pairwise probability into 1e-7, so its coupling still gives
    numbers (not 1/k each, nor NaN), and the plan gives the same."""
    X, y = dataset("iris")
    model = SVC(kernel="poly", probability=True, random_state=0).fit(X, y)
    R = X[:12].copy()
    R[::2, 0] = 1e300
    R[1::4, 2] = -1e300
    scorer = compile_scorer(model)
    ours = scorer.score_records(to_records(scorer, R))
    want = model.predict_proba(R)
    assert np.isnan(model.decision_function(R)).any()
    assert np.isfinite(want).all()
    assert np.abs(ours.proba - want).max() <= TOL


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    X, y = dataset("iris")
    model = SVC(probability=True, random_state=0).fit(X, y)
    scorer = compile_scorer(model)
    for j in range(X.shape[1]):
        row = X[:1].copy()
        row[0, j] = bad
        assert_refused(model, None, row, scorer=scorer)


def test_pipeline_with_dataframe() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), SVC(probability=True, random_state=0)).fit(X, y)
    assert_parity(model, None, X)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (SVC(kernel="precomputed"), "precomputed"),
        (make_pipeline(StandardScaler(), SVR(kernel=lambda a, b: a @ b.T)), "kernel="),
    ],
)
def test_refused_kernels(model, match: str) -> None:
    X, y = dataset("iris")
    if getattr(model, "kernel", None) == "precomputed":
        model.fit(X @ X.T, y)
    else:
        model.fit(X, y * 1.0)
    with pytest.raises(UnsupportedEstimatorError, match=match):
        compile_estimators(model)


def test_break_ties_with_ovo_is_refused() -> None:
    X, y = dataset("iris")
    model = SVC(break_ties=True, decision_function_shape="ovo").fit(X, y)
    with pytest.raises(ValueError):
        model.predict(X)
    with pytest.raises(UnsupportedEstimatorError, match="break_ties"):
        compile_estimators(model)


def test_sparse_fit_is_refused() -> None:
    X, y = dataset("iris")
    model = SVC().fit(sparse.csr_matrix(X), y)
    with pytest.raises(UnsupportedEstimatorError, match="sparse"):
        compile_estimators(model)
