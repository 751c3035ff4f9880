"""Linear models compile to plans that predict what scikit-learn 1.9 predicts.

LogisticRegression(CV), LinearRegression, Ridge(CV), Lasso(CV), ElasticNet(CV),
RidgeClassifier(CV), SGDClassifier, SGDRegressor, LinearSVC, LinearSVR, the Lars and
OMP families, BayesianRidge, ARDRegression, HuberRegressor, QuantileRegressor,
TheilSenRegressor, RANSACRegressor, PassiveAggressiveRegressor,
LinearDiscriminantAnalysis (and SGDOneClassSVM, an outlier detector): identical
labels; probabilities within 1e-9 absolute; ``decision_function`` and regression values within 1e-9
absolute wherever that is reachable: on the training data, at the decision
boundary (exactly 0 and the smallest steps either side), at extreme values; NaN
and infinity refused as scikit-learn refuses them.

Where the values are huge, 1e-9 absolute is below their last bit. scikit-learn's
``X @ coef.T`` runs through BLAS, whose summation order (so the last bits)
depends on the CPU and on the batch's shape; scikit-learn disagrees with itself
between a batch and a single row there. Those values are held to BLAS's own
worst-case rounding bound instead (:func:`blas_bound`, which is 1e-9 for ordinary
magnitudes); labels stay identical. ``MEASURED`` collects the differences seen.
"""

from __future__ import annotations

import functools
import math
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import (
    ARDRegression,
    BayesianRidge,
    ElasticNet,
    ElasticNetCV,
    HuberRegressor,
    Lars,
    LarsCV,
    Lasso,
    LassoCV,
    LassoLars,
    LassoLarsCV,
    LassoLarsIC,
    LinearRegression,
    LogisticRegression,
    LogisticRegressionCV,
    OrthogonalMatchingPursuit,
    OrthogonalMatchingPursuitCV,
    PassiveAggressiveRegressor,
    QuantileRegressor,
    RANSACRegressor,
    Ridge,
    RidgeClassifier,
    RidgeClassifierCV,
    RidgeCV,
    SGDClassifier,
    SGDOneClassSVM,
    SGDRegressor,
    TheilSenRegressor,
)
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC, LinearSVR

from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.plan import PlanError, parse_plan
from mlbundle_runtime.scorer import Scorer, Scores
from tests._data import datasets
from tests._parity import (
    TOL,
    assert_refused,
    compare,
    compile_scorer,
    kernels,
    sklearn_predict,
    to_records,
)

HYPOTHESIS = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
F32_MAX = float(np.finfo(np.float32).max)
#: Units in the last place accepted where 1e-9 absolute is out of reach (huge targets).
ULPS = 4


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("linear")


# -- data and models -------------------------------------------------------------------


def scaled(model: Any) -> Pipeline:
    return make_pipeline(StandardScaler(), model)


CLASSIFIERS: dict[str, tuple[Any, str]] = {
    "logreg-binary": (lambda: LogisticRegression(), "binary"),
    "logreg-liblinear": (lambda: LogisticRegression(solver="liblinear"), "binary"),
    "logreg-liblinear-l1": (
        lambda: LogisticRegression(solver="liblinear", l1_ratio=1.0, C=0.5),
        "breast_cancer",
    ),
    "logreg-no-intercept": (lambda: LogisticRegression(fit_intercept=False), "binary"),
    "logreg-multinomial": (lambda: LogisticRegression(max_iter=1000), "multi4"),
    "logreg-newton-cholesky": (
        lambda: scaled(LogisticRegression(solver="newton-cholesky")),
        "iris",
    ),
    "logreg-saga-12": (lambda: scaled(LogisticRegression(solver="saga")), "multi12"),
    "ridgeclf-binary": (lambda: RidgeClassifier(), "breast_cancer"),
    "ridgeclf-multi": (lambda: RidgeClassifier(alpha=0.3), "multi4"),
    "ridgeclf-no-intercept": (lambda: RidgeClassifier(fit_intercept=False), "iris"),
    "sgd-hinge-binary": (lambda: SGDClassifier(random_state=0), "binary"),
    "sgd-hinge-multi": (lambda: scaled(SGDClassifier(random_state=0)), "multi4"),
    "sgd-log-binary": (lambda: SGDClassifier(loss="log_loss", random_state=0), "binary"),
    "sgd-log-multi": (lambda: scaled(SGDClassifier(loss="log_loss", random_state=0)), "iris"),
    "sgd-log-12": (lambda: SGDClassifier(loss="log_loss", random_state=0), "multi12"),
    "sgd-huber-binary": (
        lambda: scaled(SGDClassifier(loss="modified_huber", random_state=0)),
        "breast_cancer",
    ),
    "sgd-huber-multi": (
        lambda: SGDClassifier(loss="modified_huber", random_state=0),
        "multi3",
    ),
    "sgd-huber-12": (lambda: SGDClassifier(loss="modified_huber", random_state=0), "multi12"),
    "sgd-perceptron-avg": (
        lambda: SGDClassifier(loss="perceptron", average=True, random_state=0),
        "multi3",
    ),
    "sgd-squared-hinge-l1": (
        lambda: scaled(SGDClassifier(loss="squared_hinge", penalty="l1", random_state=0)),
        "binary",
    ),
    "linsvc-binary": (lambda: LinearSVC(), "binary"),
    "linsvc-multi": (lambda: scaled(LinearSVC(C=0.5)), "multi4"),
    "linsvc-crammer-singer": (lambda: LinearSVC(multi_class="crammer_singer"), "multi3"),
    "linsvc-crammer-singer-binary": (
        lambda: LinearSVC(multi_class="crammer_singer"),
        "binary",
    ),
    "linsvc-l1-hinge-free": (
        lambda: LinearSVC(penalty="l1", dual=False, fit_intercept=False),
        "multi3",
    ),
    "logregcv-binary": (lambda: scaled(LogisticRegressionCV(Cs=4)), "breast_cancer"),
    "logregcv-multi": (lambda: LogisticRegressionCV(Cs=3, max_iter=2000), "multi4"),
    "logregcv-elasticnet": (
        lambda: scaled(
            LogisticRegressionCV(Cs=3, l1_ratios=[0.2, 0.8], solver="saga", max_iter=3000)
        ),
        "iris",
    ),
    "ridgeclfcv-binary": (lambda: RidgeClassifierCV(), "breast_cancer"),
    "ridgeclfcv-multi": (lambda: RidgeClassifierCV(alphas=[0.01, 1.0, 30.0], cv=3), "multi4"),
    "lda-binary": (lambda: LinearDiscriminantAnalysis(), "breast_cancer"),
    "lda-multi": (lambda: LinearDiscriminantAnalysis(), "multi4"),
    "lda-lsqr-shrinkage": (
        lambda: LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto"),
        "multi12",
    ),
    "lda-eigen-priors": (
        lambda: LinearDiscriminantAnalysis(solver="eigen", shrinkage=0.1, priors=[0.5, 0.3, 0.2]),
        "iris",
    ),
}

REGRESSORS: dict[str, tuple[Any, str]] = {
    "linreg": (lambda: LinearRegression(), "regression"),
    "linreg-no-intercept": (lambda: LinearRegression(fit_intercept=False), "diabetes"),
    "linreg-positive": (lambda: LinearRegression(positive=True), "diabetes"),
    "linreg-wide": (lambda: LinearRegression(), "wide"),
    "ridge": (lambda: Ridge(alpha=0.5), "diabetes"),
    "ridge-svd": (lambda: Ridge(solver="svd"), "regression"),
    "ridge-lsqr": (lambda: Ridge(solver="lsqr", fit_intercept=False), "regression"),
    "ridge-sag": (lambda: Ridge(solver="sag", random_state=0, max_iter=2000), "diabetes"),
    "ridge-lbfgs-positive": (lambda: Ridge(solver="lbfgs", positive=True), "regression"),
    "lasso": (lambda: Lasso(alpha=0.1), "diabetes"),
    "lasso-wide": (lambda: Lasso(alpha=0.5), "wide"),
    "elasticnet": (lambda: ElasticNet(alpha=0.05, l1_ratio=0.3), "regression"),
    "sgdreg": (lambda: scaled(SGDRegressor(random_state=0)), "diabetes"),
    "sgdreg-huber-avg": (
        lambda: scaled(SGDRegressor(loss="huber", average=10, random_state=0)),
        "regression",
    ),
    "sgdreg-epsilon": (
        lambda: scaled(SGDRegressor(loss="epsilon_insensitive", random_state=0)),
        "regression",
    ),
    "linsvr": (lambda: scaled(LinearSVR(random_state=0, max_iter=5000)), "diabetes"),
    "linsvr-squared": (
        lambda: LinearSVR(loss="squared_epsilon_insensitive", random_state=0),
        "regression",
    ),
    "ridgecv": (lambda: RidgeCV(alphas=[0.1, 1.0, 10.0]), "diabetes"),
    "ridgecv-folds": (lambda: RidgeCV(cv=4), "regression"),
    "lassocv": (lambda: LassoCV(cv=3, random_state=0), "diabetes"),
    "elasticnetcv": (lambda: ElasticNetCV(l1_ratio=[0.2, 0.7], cv=3), "regression"),
    "lars": (lambda: Lars(), "diabetes"),
    "lars-few": (lambda: Lars(n_nonzero_coefs=3, fit_intercept=False), "regression"),
    "lassolars": (lambda: LassoLars(alpha=0.05), "diabetes"),
    "larscv": (lambda: LarsCV(cv=3), "regression"),
    "lassolarscv": (lambda: LassoLarsCV(cv=3), "diabetes"),
    "lassolarsic-bic": (lambda: LassoLarsIC(criterion="bic"), "diabetes"),
    "omp": (lambda: OrthogonalMatchingPursuit(n_nonzero_coefs=4), "regression"),
    "ompcv": (lambda: OrthogonalMatchingPursuitCV(cv=3), "diabetes"),
    "bayesian-ridge": (lambda: BayesianRidge(), "diabetes"),
    "ard": (lambda: ARDRegression(), "regression"),
    "huber": (lambda: scaled(HuberRegressor(epsilon=1.2, max_iter=500)), "diabetes"),
    "quantile": (lambda: QuantileRegressor(quantile=0.8, alpha=0.01), "regression"),
    "theilsen": (lambda: TheilSenRegressor(random_state=0, max_subpopulation=500), "regression"),
    "passive-aggressive": (
        lambda: scaled(PassiveAggressiveRegressor(random_state=0)),
        "diabetes",
    ),
    "passive-aggressive-sq-avg": (
        lambda: PassiveAggressiveRegressor(
            loss="squared_epsilon_insensitive", average=True, random_state=0
        ),
        "regression",
    ),
    "ransac": (lambda: RANSACRegressor(random_state=0), "regression"),
    "ransac-ridge": (
        lambda: RANSACRegressor(Ridge(alpha=2.0), min_samples=50, random_state=1),
        "diabetes",
    ),
}

MODELS = {**CLASSIFIERS, **REGRESSORS}


@functools.cache
def fitted(name: str) -> tuple[Any, np.ndarray, Scorer]:
    factory, ds = MODELS[name]
    X, y = dataset(ds)
    model = factory().fit(X, y)
    return model, X, compile_scorer(model)


def final(model: Any) -> Any:
    return model[-1] if isinstance(model, Pipeline) else model


# -- comparison ------------------------------------------------------------------------


def blas_bound(model: Any, X: np.ndarray) -> np.ndarray:
    """Per row and output: the larger of 1e-9 and BLAS's worst-case rounding error.

    Any summation order of ``x @ w + b`` is within ``(n + 2) u (|x| @ |w| + |b|)`` of the
    exact value (u = 2**-53), so two orders differ by at most twice that. Below 1e-9 (the
    usual case) the bar is 1e-9 absolute.
    """
    est = final(model)
    est = getattr(est, "estimator_", est)  # RANSACRegressor predicts with its estimator_
    Z = model[:-1].transform(X) if isinstance(model, Pipeline) else X
    coef = est.coef_.toarray() if hasattr(est.coef_, "toarray") else est.coef_
    coef = np.atleast_2d(np.asarray(coef, dtype=np.float64))
    b = np.broadcast_to(np.abs(np.asarray(est.intercept_, dtype=np.float64)), (coef.shape[0],))
    with np.errstate(over="ignore", invalid="ignore"):
        terms = np.abs(Z) @ np.abs(coef).T + b
        bound = 2 * (coef.shape[1] + 2) * 2.0**-53 * terms
    bound = np.where(np.isfinite(bound), bound, 0.0)
    return np.maximum(bound, TOL)


def _agree(ours: np.ndarray, theirs: np.ndarray, bar: np.ndarray | float) -> np.ndarray:
    """Within ``bar`` (NaN matches NaN, infinities must be equal)."""
    ours = np.asarray(ours, dtype=np.float64)
    theirs = np.asarray(theirs, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(ours - theirs)
        return (np.isnan(ours) & np.isnan(theirs)) | (ours == theirs) | (diff <= bar)


def extra(ours: Scores, name: str) -> np.ndarray | None:
    for e, values in ours.extras:
        if e.name == name:
            return values
    return None


#: Largest differences seen by ``check``, per kind, for the report (``-s`` prints them).
MEASURED: dict[str, float] = {}


def _note(kind: str, diff: np.ndarray, bar: np.ndarray | float = TOL) -> float:
    """Record the largest difference, apart for values whose bar is beyond 1e-9 (huge)."""
    diff = np.where(np.isfinite(diff), diff, 0.0)
    ordinary = np.broadcast_to(np.asarray(bar) <= TOL, diff.shape)
    for key, part in ((kind, diff[ordinary]), (f"{kind}, huge values", diff[~ordinary])):
        if part.size:
            MEASURED[key] = max(MEASURED.get(key, 0.0), float(part.max()))
    return float(diff.max(initial=0.0))


def check(model: Any, X: np.ndarray, scorer: Scorer, context: str = "") -> tuple[float, float]:
    """Labels identical, probabilities within 1e-9; regression values and decision_function
    within :func:`blas_bound` (1e-9 unless the values are huge).

    Returns the largest absolute differences (values or probabilities, decision_function).
    """
    ours = scorer.score_records(to_records(scorer, X))
    labels, proba = sklearn_predict(model, None, X)
    bound = blas_bound(model, X)
    with np.errstate(invalid="ignore", over="ignore"):
        if ours.task == "regression":
            assert ours.values is not None
            ok = _agree(ours.values, labels, bound[:, 0])
            bad = np.flatnonzero(~ok)
            assert bad.size == 0, (
                f"{context}: value differs in row {bad[0]}: {ours.values[bad[0]]!r} vs "
                f"scikit-learn {labels[bad[0]]!r} (bar {bound[bad[0], 0]:.3g})"
            )
            value_diff = _note("regression value", np.abs(ours.values - labels), bound[:, 0])
        else:
            compare(ours, labels, proba, context)  # labels identical, probabilities 1e-9
            value_diff = 0.0
            if proba is not None and ours.proba is not None:
                value_diff = _note("probability", np.abs(ours.proba - proba))
        dec_diff = 0.0
        if hasattr(model, "decision_function"):
            want = np.asarray(model.decision_function(X), dtype=np.float64)
            got = extra(ours, "decision_function")
            assert got is not None, f"{context}: decision_function is not exposed"
            got = got[:, 0] if want.ndim == 1 else got
            assert got.shape == want.shape, (got.shape, want.shape)
            bar = bound[:, 0] if want.ndim == 1 else bound
            bad = np.argwhere(~_agree(got, want, bar))
            assert bad.size == 0, (
                f"{context}: decision_function differs at {bad[0].tolist()}: "
                f"{got[tuple(bad[0])]!r} vs scikit-learn {want[tuple(bad[0])]!r} "
                f"(bar {np.broadcast_to(bar, got.shape)[tuple(bad[0])]:.3g})"
            )
            dec_diff = _note("decision_function", np.abs(got - want), bar)
    return value_diff, dec_diff


# -- every model: training data, extremes, refusals --------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_training_data(name: str) -> None:
    model, X, scorer = fitted(name)
    check(model, X, scorer, "training data")
    est = final(model)
    if name in CLASSIFIERS:
        ours = scorer.score_records(to_records(scorer, X[:5]))
        assert len(set(model.predict(X))) > 1  # the fixture predicts several classes
        has_proba = hasattr(model, "predict_proba")
        assert (ours.proba is not None) == has_proba, (name, type(est).__name__)


@pytest.mark.parametrize("name", list(MODELS))
def test_extreme_values(name: str) -> None:
    """0, tiny, huge (beyond float32: no float32 cast here) and +-1e300 in each end feature."""
    model, X, scorer = fitted(name)
    for f in (0, X.shape[1] - 1):
        for v in (0.0, -0.0, 1e-300, 5e-324, F32_MAX, 1e39, -1e39, 1e300, -1e300):
            rows = X[:4].copy()
            rows[:, f] = v
            check(model, rows, scorer, f"x{f}={v!r}")


@pytest.mark.parametrize("name", list(MODELS))
def test_whole_row_extreme(name: str) -> None:
    """Every feature at 1e300: the value's last bits depend on BLAS's summation order."""
    model, X, scorer = fitted(name)
    for v in (1e300, -1e300, 1e150):
        rows = X[:3].copy()
        rows[1, :] = v
        check(model, rows, scorer, f"row of {v!r}")


@pytest.mark.parametrize("name", list(MODELS))
def test_nan_and_infinity_refused(name: str) -> None:
    model, X, scorer = fitted(name)
    for f in range(X.shape[1]):
        for v in (math.nan, math.inf, -math.inf):
            rows = X[:3].copy()
            rows[2, f] = v
            err = assert_refused(model, None, rows, scorer=scorer)
            assert "record 3" in str(err) and f"'x{f}'" in str(err)
        if f >= 2:  # every feature once for NaN is enough; stop after three
            break


@pytest.mark.parametrize(
    "name",
    [
        "logreg-multinomial",
        "sgd-huber-multi",
        "linsvc-binary",
        "ridge",
        "lasso-wide",
        "lda-multi",
        "logregcv-binary",
        "huber",
        "ransac",
    ],
)
@HYPOTHESIS
@given(data=st.data())
def test_random_rows(name: str, data: Any) -> None:
    model, X, scorer = fitted(name)
    scale = data.draw(st.sampled_from([1.0, 1e-3, 1e3]), label="scale")
    value = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)
    rows = data.draw(
        st.lists(st.lists(value, min_size=X.shape[1], max_size=X.shape[1]), min_size=1, max_size=6),
        label="rows",
    )
    check(model, np.array(rows) * scale, scorer)


# -- the decision boundary --------------------------------------------------------------


def _hand_set(est: Any, coef: list[float], intercept: float) -> Any:
    est.coef_ = np.array([coef])
    est.intercept_ = np.array([intercept])
    return est


BINARY = {
    "LogisticRegression": lambda: LogisticRegression(),
    "RidgeClassifier": lambda: RidgeClassifier(),
    "SGDClassifier-hinge": lambda: SGDClassifier(random_state=0),
    "SGDClassifier-log_loss": lambda: SGDClassifier(loss="log_loss", random_state=0),
    "SGDClassifier-modified_huber": lambda: SGDClassifier(loss="modified_huber", random_state=0),
    "LinearSVC": lambda: LinearSVC(),
    "RidgeClassifierCV": lambda: RidgeClassifierCV(),
    "LinearDiscriminantAnalysis": lambda: LinearDiscriminantAnalysis(),
}


@pytest.mark.parametrize("kind", list(BINARY))
def test_binary_decision_exactly_zero_predicts_first_class(kind: str) -> None:
    """``predict`` is ``classes_[d > 0]``: d == 0 (in any summation order) gives classes_[0]."""
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    est = _hand_set(BINARY[kind]().fit(X, ["neg", "pos", "neg", "pos"]), [1.0, -1.0], 0.0)
    a = np.array([0.0, 1.0, -3.5, 1e300, 123456.789, 2.0**-1074])
    rows = np.column_stack([a, a])
    assert np.all(est.decision_function(rows) == 0.0)
    scorer = compile_scorer(est)
    check(est, rows, scorer)
    ours = scorer.score_records(to_records(scorer, rows))
    assert ours.labels() == ["neg"] * len(a)
    if ours.proba is not None:
        assert np.all(ours.proba == 0.5)
    # zero from a cancelling intercept, exact in every order
    est = _hand_set(est, [0.5, 0.25], -1.0)
    rows = np.array([[1.0, 2.0], [2.0, -0.0], [0.0, 4.0], [1.0, 2.0 + 2**-50]])
    scorer = compile_scorer(est)
    check(est, rows, scorer)
    assert scorer.score_records(to_records(scorer, rows)).labels() == [
        "neg",
        "neg",
        "neg",
        "pos",
    ]


@pytest.mark.parametrize("kind", list(BINARY))
def test_binary_decision_tiny_either_side_of_zero(kind: str) -> None:
    X = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0], [1.0, 0.0]])
    est = _hand_set(BINARY[kind]().fit(X, [0, 1, 0, 1]), [1.0, -1.0], 0.0)
    tiny = 2.0**-1074
    rows = np.array([[tiny, 0.0], [0.0, tiny], [1.0, np.nextafter(1.0, 2.0)], [1.0, 1.0 - 2**-53]])
    scorer = compile_scorer(est)
    check(est, rows, scorer)
    assert scorer.score_records(to_records(scorer, rows)).labels() == [1, 0, 0, 1]


@pytest.mark.parametrize("name", ["logreg-binary", "sgd-hinge-binary", "linsvc-binary"])
def test_binary_near_boundary(name: str) -> None:
    """Rows projected to decision +-1e-7: far above rounding noise, labels must agree."""
    model, X, scorer = fitted(name)
    est = final(model)
    w, b = est.coef_[0], est.intercept_[0]
    rows = []
    for target in (1e-7, -1e-7):
        rows.append(X[:40] - ((X[:40] @ w + b - target) / (w @ w))[:, None] * w)
    rows = np.vstack(rows)
    d = model.decision_function(rows)
    assert np.all(np.abs(d) < 1e-5) and (d > 0).sum() == 40
    check(model, rows, scorer)


# -- one-vs-rest probabilities ----------------------------------------------------------


@pytest.mark.parametrize("loss", ["log_loss", "modified_huber"])
def test_ovr_all_zero_rows_become_uniform(loss: str) -> None:
    """Every class's OvR value 0 (expit underflow / clip at -1): uniform probabilities."""
    X, y = dataset("multi4")
    est = SGDClassifier(loss=loss, random_state=0).fit(X, y)
    est.intercept_ = np.full(4, -800.0 if loss == "log_loss" else -5.0)
    est.coef_ = est.coef_ * 1e-3
    rows = X[:20]
    assert np.all(est.predict_proba(rows) == 0.25)
    check(est, rows, compile_scorer(est))
    # one class escapes the floor: normalised by a sum that is no longer zero
    est.intercept_[2] = 0.0
    assert not np.all(est.predict_proba(rows) == 0.25)
    check(est, rows, compile_scorer(est))


def test_modified_huber_binary_clips_at_one() -> None:
    X, y = dataset("binary")
    est = SGDClassifier(loss="modified_huber", random_state=0).fit(X, y)
    est.coef_ = est.coef_ / np.abs(est.coef_).sum()  # decision values of order 1
    est.intercept_ = np.array([0.1])
    rows = np.vstack([X[:30] * 50.0, X[:30]])
    proba = est.predict_proba(rows)
    assert np.any(proba == 1.0) and np.any((proba > 0) & (proba < 1))
    check(est, rows, compile_scorer(est))


# -- options and refusals ---------------------------------------------------------------


def test_string_classes() -> None:
    X, y = dataset("multi3")
    names = np.array(["ant", "bee", "cat"])[y]
    for est in (
        LogisticRegression(max_iter=1000),
        RidgeClassifier(),
        SGDClassifier(loss="log_loss", random_state=0),
        LinearSVC(),
        LogisticRegressionCV(Cs=2, max_iter=1000),
        RidgeClassifierCV(),
        LinearDiscriminantAnalysis(),
    ):
        est.fit(X, names)
        scorer = compile_scorer(est)
        check(est, X, scorer)
        ours = scorer.score_records(to_records(scorer, X[:3]))
        got = extra(ours, "decision_function")
        assert got is not None and got.shape == (3, 3)
        labels = next(e.labels for e, _ in ours.extras if e.name == "decision_function")
        assert labels == ("ant", "bee", "cat")
        binary = type(est)(**est.get_params()).fit(X[y < 2], names[y < 2])
        check(binary, X, compile_scorer(binary))


@pytest.mark.parametrize(
    "factory",
    [
        lambda: LinearSVC(penalty="l1", dual=False),
        lambda: SGDClassifier(loss="log_loss", penalty="l1", random_state=0),
        lambda: LogisticRegression(solver="liblinear", l1_ratio=1.0),
    ],
)
def test_sparsified_coefficients(factory: Any) -> None:
    X, y = dataset("multi3")
    if isinstance(factory(), LogisticRegression):  # liblinear: binary only
        X, y = X[y < 2], y[y < 2]
    est = factory().fit(X, y)
    est.sparsify()
    assert not isinstance(est.coef_, np.ndarray)
    check(est, X, compile_scorer(est))


def test_float32_fitted_coefficients() -> None:
    """Fitted on float32 X, coef_ is float32; predict on float64 X widens it exactly."""
    X, y = dataset("diabetes")
    for est in (Ridge(), LinearRegression(), SGDRegressor(random_state=0)):
        est.fit(StandardScaler().fit_transform(X).astype(np.float32), y.astype(np.float32))
        assert est.coef_.dtype == np.float32
        check(est, X, compile_scorer(est))
    Xc, yc = dataset("multi3")
    clf = RidgeClassifier().fit(Xc.astype(np.float32), yc)
    assert clf.coef_.dtype == np.float32
    check(clf, Xc, compile_scorer(clf))


def test_column_target_is_single_output() -> None:
    """y of shape (n, 1): scikit-learn predicts (n, 1); the plan gives the same numbers."""
    X, y = dataset("regression")
    for est in (LinearRegression(), Ridge(), Lasso(alpha=0.1), ElasticNet()):
        est.fit(X, y.reshape(-1, 1))
        want = est.predict(X).reshape(-1)
        scorer = compile_scorer(est)
        ours = scorer.score_records(to_records(scorer, X))
        assert ours.values is not None
        assert np.all(np.abs(ours.values - want) <= TOL)


@pytest.mark.parametrize("cls", [Lars, LassoLars, OrthogonalMatchingPursuit])
def test_multi_output_regression_refused(cls: Any) -> None:
    """Several targets compile for the regressors tests/test_multi_output.py checks; the
    others say which do."""
    X, y = dataset("regression")
    est = cls().fit(X, np.column_stack([y, -2 * y]))
    with pytest.raises(
        UnsupportedEstimatorError, match=r"predicts 2 targets; several targets compile for "
    ):
        compile_estimators(est)


def test_multilabel_ridge_classifier_refused() -> None:
    X, y = dataset("multi3")
    est = RidgeClassifier().fit(X, np.column_stack([y == 0, y == 1]).astype(int))
    with pytest.raises(UnsupportedEstimatorError, match="multilabel"):
        compile_estimators(est)


def test_feature_count_mismatch_refused() -> None:
    X, y = dataset("binary")
    est = LinearSVC().fit(X, y)
    est.coef_ = est.coef_[:, :5]
    with pytest.raises(UnsupportedEstimatorError, match="receives 8 features"):
        compile_estimators(est)


def test_pipeline_with_scaler() -> None:
    X, y = dataset("breast_cancer")
    for final_step in (
        LinearSVC(),
        RidgeClassifier(),
        SGDClassifier(loss="modified_huber", random_state=0),
    ):
        model = make_pipeline(StandardScaler(), final_step).fit(X, y)
        check(model, X, compile_scorer(model))


def test_registered_with_options() -> None:
    registered = {r.cls: r for r in supported()}
    for cls in (
        LogisticRegression,
        LinearRegression,
        Ridge,
        Lasso,
        ElasticNet,
        RidgeClassifier,
        SGDClassifier,
        SGDRegressor,
        LinearSVC,
        LinearSVR,
        *(type(final(factory())) for factory, _ in MODELS.values()),
        SGDOneClassSVM,
    ):
        assert cls in registered and registered[cls].options.strip(), cls


def test_logistic_regression_has_no_multi_class_in_1_9() -> None:
    """The one-vs-rest LogisticRegression of earlier versions is gone: liblinear refuses >2
    classes, every other solver is multinomial (softmax), so there is nothing else to convert."""
    X, y = dataset("multi3")
    assert "multi_class" not in LogisticRegression().get_params()
    with pytest.raises(ValueError, match="liblinear"):
        LogisticRegression(solver="liblinear").fit(X, y)


# -- large magnitudes: what BLAS allows ---------------------------------------------------


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs(a - b) / np.spacing(np.maximum(np.abs(a), np.abs(b)))


def test_large_values_features_scaled_1e6() -> None:
    """Features in the millions, targets/decisions of ordinary size: 1e-9 absolute holds."""
    Xr, yr = dataset("regression")
    Xc, yc = dataset("multi3")
    for est, X, y in (
        (LinearRegression(), Xr * 1e6, yr),
        (Ridge(alpha=1e-3), Xr * 1e6 + 3e6, yr),
        (LogisticRegression(max_iter=5000), Xc * 1e6, yc),
        (LinearSVC(max_iter=5000), Xc * 1e6, yc),
    ):
        est.fit(X, y)
        value_diff, dec_diff = check(est, X, compile_scorer(est), type(est).__name__)
        assert max(value_diff, dec_diff) <= TOL


def test_large_values_huge_targets_within_blas_rounding() -> None:
    """Targets ~4e9: 1e-9 absolute is far below one unit in the last place (~5e-7), so only
    bit-identical sums would pass it, and BLAS's sums depend on the CPU and the batch shape
    (scikit-learn's batch and single-row predictions differ). The plan stays within a few
    ulps of both."""
    X, y = dataset("wide")
    est = LinearRegression().fit(X, y * 1e6 + 4e9)
    scorer = compile_scorer(est)
    ours = scorer.score_records(to_records(scorer, X)).values
    batch = est.predict(X)
    single = np.array([est.predict(X[i : i + 1])[0] for i in range(40)])
    assert ours is not None
    assert np.abs(batch).min() > 1e8
    assert np.max(_ulps(ours, batch)) <= ULPS
    assert np.max(_ulps(ours[:40], single)) <= ULPS
    print(
        f"|d|~{np.abs(batch).max():.2g}: plan vs batch max {np.abs(ours - batch).max():.3g} "
        f"({np.max(_ulps(ours, batch)):.0f} ulp), plan vs single rows "
        f"{np.abs(ours[:40] - single).max():.3g}, scikit-learn batch vs single rows "
        f"{np.abs(batch[:40] - single).max():.3g}"
    )


def test_compensated_dot_is_correctly_rounded() -> None:
    """The linear_dot2 kernel against exact rational arithmetic (then one rounding)."""
    rng = np.random.RandomState(0)
    n, m = 200, 60
    X = rng.randn(n, m) * 10.0 ** rng.randint(-6, 7, size=(n, m))
    X[:20, 0], X[:20, -1] = 1e16, -1e16  # cancellation an in-order sum gets wrong
    coef = rng.randn(2, m)
    coef[:, 0] = coef[:, -1] = 1.0
    ws = np.zeros((n, m + 2))
    ws[:, :m] = X
    kernels().linear_dot2(ws, np.arange(m), np.array([m, m + 1]), coef, np.zeros(2))
    worse = 0
    for i in range(n):
        for j in range(2):
            exact = float(sum(Fraction(X[i, k]) * Fraction(coef[j, k]) for k in range(m)))
            assert ws[i, m + j] == exact, (i, j, ws[i, m + j], exact)
            plain = 0.0
            for k in range(m):
                plain += X[i, k] * coef[j, k]
            worse += plain != exact
    assert worse > 0  # the plain sum is not exact on this data; the kernel is


@pytest.mark.parametrize("kind", [0, 1])
def test_ovr_proba_kernel_is_bit_exact(kind: int) -> None:
    """``ovr_proba`` against numpy's own arithmetic, for class counts where numpy's pairwise
    row sum differs from an in-order sum (>= 9, > 128 splits in halves)."""
    from scipy.special import expit

    rng = np.random.RandomState(kind)
    for k in (1, 2, 3, 8, 9, 16, 17, 31, 128, 129, 300):
        D = rng.randn(40, k) * 10.0 ** rng.randint(-3, 3, size=(40, k))
        D[0] = -800.0  # a row of zeros: uniform
        P = expit(D) if kind == 0 else (np.clip(D, -1, 1) + 1.0) / 2.0
        total = P.sum(axis=1)
        zero = total == 0
        P[zero] = 1
        total[zero] = k
        P /= total.reshape(-1, 1)
        ws = np.ascontiguousarray(np.hstack([D, np.zeros_like(D)]))
        kernels().ovr_proba(ws, np.arange(k), np.arange(k, 2 * k), kind)
        assert np.array_equal(ws[:, k:], P), k


# -- plan checks for the new kernels ------------------------------------------------------


def _ops(plan: Any, kernel: str) -> list[dict[str, Any]]:
    return [op for op in plan.header["ops"] if op["kernel"] == kernel]


@pytest.mark.parametrize(
    "name, kernel, arg, change",
    [
        ("linsvc-multi", "linear_dot2", 2, "drop column"),
        ("linsvc-multi", "linear_dot2", 3, "drop row"),
        ("sgd-huber-multi", "ovr_proba", 1, "drop row"),
        ("sgd-huber-multi", "ovr_proba", 2, "kind 7"),
        ("sgd-huber-binary", "huber_pair", 1, "drop row"),
        ("linreg", "linear_dot2", 1, "out of range"),
    ],
)
def test_plan_checks_refuse_broken_ops(name: str, kernel: str, arg: int, change: str) -> None:
    model, _, _ = fitted(name)
    plan = compile_estimators(model)
    op = _ops(plan, kernel)[0]
    arrays = dict(plan.arrays)
    if change == "kind 7":
        op["args"][arg] = 7
    else:
        key = op["args"][arg]["array"]
        data = arrays[key]
        if change == "drop row":
            data = data[:-1]
        elif change == "drop column":
            data = data[:, :-1]
        else:
            data = data.copy()
            data[0] = plan.header["width"]
        arrays[key] = np.ascontiguousarray(data)
    with pytest.raises(PlanError):
        parse_plan(plan.header, arrays)


def test_ransac_compiles_any_registered_regressor_as_its_estimator() -> None:
    """``RANSACRegressor.predict`` validates with NaN allowed and then calls
    ``estimator_.predict``: with a tree inside, NaN rows score as the tree scores them."""
    from sklearn.tree import DecisionTreeRegressor

    from tests._data import with_nan
    from tests._parity import assert_same_outcome

    X, y = dataset("regression")
    est = RANSACRegressor(DecisionTreeRegressor(max_depth=4), min_samples=60, random_state=0)
    est.fit(with_nan(X, 0.05), y)
    scorer = compile_scorer(est)
    assert assert_same_outcome(est, None, with_nan(X, 0.2, seed=3), scorer=scorer)
    ops = [op["origin"] for op in compile_estimators(est).header["ops"]]
    assert all(o.startswith("DecisionTreeRegressor (model/estimator_)") for o in ops), ops


# -- SGDOneClassSVM: an outlier detector --------------------------------------------------


@functools.cache
def one_class() -> tuple[SGDOneClassSVM, np.ndarray, Scorer]:
    X, _ = dataset("breast_cancer")
    X = StandardScaler().fit_transform(X)
    est = SGDOneClassSVM(nu=0.2, random_state=0).fit(X)
    return est, X, compile_scorer(est)


def _one_class_check(est: SGDOneClassSVM, X: np.ndarray, scorer: Scorer) -> None:
    """Labels identical; decision_function and score_samples within the BLAS bound."""
    ours = scorer.score_records(to_records(scorer, X))
    assert ours.labels() == list(est.predict(X))
    coef = np.abs(est.coef_)
    with np.errstate(over="ignore", invalid="ignore"):
        bound = 2 * (len(coef) + 2) * 2.0**-53 * (np.abs(X) @ coef + abs(est.offset_[0]))
    bar = np.maximum(np.where(np.isfinite(bound), bound, 0.0), TOL)
    for name in ("decision_function", "score_samples"):
        got = extra(ours, name)
        assert got is not None, name
        want = getattr(est, name)(X)
        bad = np.flatnonzero(~_agree(got[:, 0], want, bar))
        assert bad.size == 0, (name, bad[:3], got[bad[:3], 0], want[bad[:3]])
        _note(f"SGDOneClassSVM {name}", np.abs(got[:, 0] - want), bar)


def test_one_class_svm_training_data_and_extremes() -> None:
    est, X, scorer = one_class()
    assert set(est.predict(X)) == {-1, 1}
    _one_class_check(est, X, scorer)
    for f in (0, X.shape[1] - 1):
        for v in (0.0, -0.0, 5e-324, F32_MAX, -1e39, 1e300, -1e300):
            rows = X[:4].copy()
            rows[:, f] = v
            _one_class_check(est, rows, scorer)


def test_one_class_svm_decision_exactly_zero_is_an_inlier() -> None:
    """``predict`` is ``1`` where ``decision_function >= 0``: exactly 0 is an inlier."""
    est = SGDOneClassSVM(random_state=0).fit(np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]]))
    est.coef_ = np.array([1.0, -1.0])
    est.offset_ = np.array([0.5])
    rows = np.array([[0.5, 0.0], [1.5, 1.0], [0.5, 2.0**-53], [0.5 + 2**-52, 0.0], [3.0, 0.0]])
    assert list(est.decision_function(rows)[:2]) == [0.0, 0.0]
    scorer = compile_scorer(est)
    _one_class_check(est, rows, scorer)
    assert scorer.score_records(to_records(scorer, rows)).labels() == [1, 1, -1, 1, 1]


def test_one_class_svm_refuses_nan_and_infinity() -> None:
    est, X, scorer = one_class()
    for v in (math.nan, math.inf):
        rows = X[:3].copy()
        rows[1, 4] = v
        err = assert_refused(est, None, rows, scorer=scorer)
        assert "record 2" in str(err) and "'x4'" in str(err)


# -- LinearDiscriminantAnalysis probabilities ------------------------------------------------


@pytest.mark.parametrize("name", ["lda-binary", "lda-multi", "lda-lsqr-shrinkage"])
def test_lda_probabilities_far_from_the_training_data(name: str) -> None:
    """Rows far out: probabilities saturate at 0 and 1 (expit / softmax underflow)."""
    model, X, scorer = fitted(name)
    rows = np.vstack([X[:10] * 30.0, X[:10] * -30.0, X[:10] * 1e-6])
    proba = model.predict_proba(rows)
    assert np.any(proba == 0.0) or np.any(proba == 1.0)
    check(model, rows, scorer)


def test_zz_report_measured_differences() -> None:
    """Runs last: print the largest differences ``check`` saw (``pytest -s``)."""
    print("\nlinear models, largest absolute differences vs scikit-learn:", MEASURED)
    assert all(v <= TOL for k, v in MEASURED.items() if "huge" not in k)
