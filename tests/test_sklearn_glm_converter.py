"""Generalised linear models compile to plans that predict what scikit-learn 1.9 predicts.

PoissonRegressor, GammaRegressor and TweedieRegressor (every power; the log link, the
identity link, and ``link="auto"`` choosing between them by power): values within the
parity bar (1e-9 absolute, or 1e-12 relative above 1e3) on the training data, at
extreme values (where ``exp`` overflows to infinity or underflows to 0 on both sides),
around ``exp``'s overflow and underflow thresholds; NaN and infinity refused as
scikit-learn refuses them. ``MEASURED`` collects the largest differences seen.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn._loss.loss import HalfBinomialLoss
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler import parity
from bundler.compiler import compile_estimators, supported
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    to_records,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

F32_MAX = float(np.finfo(np.float32).max)


@functools.cache
def data(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Six features; targets drawn from the family the model assumes."""
    rng = np.random.RandomState(7)
    X = rng.randn(400, 6) * np.array([1.0, 2.0, 0.5, 10.0, 1e-2, 3.0])
    eta = X @ np.array([0.3, -0.2, 0.5, 0.02, 5.0, 0.0]) + 0.5
    mu = np.exp(eta)
    if kind == "counts":
        return X, rng.poisson(mu).astype(np.float64)
    if kind == "positive":
        return X, rng.gamma(2.0, mu / 2.0)
    if kind == "zero-inflated":  # compound Poisson-gamma (Tweedie 1 < p < 2): zeros and values
        n = rng.poisson(mu / 2.0)
        return X, np.array([rng.gamma(2.0, 1.0, k).sum() for k in n])
    return X, eta + rng.randn(len(eta))  # signed, for the identity link


MODELS: dict[str, tuple[Any, str]] = {
    "poisson": (lambda: PoissonRegressor(alpha=1e-3), "counts"),
    "poisson-newton-cholesky": (
        lambda: PoissonRegressor(alpha=0.1, solver="newton-cholesky"),
        "counts",
    ),
    "poisson-no-intercept": (lambda: PoissonRegressor(fit_intercept=False), "counts"),
    "poisson-scaled": (lambda: make_pipeline(StandardScaler(), PoissonRegressor()), "counts"),
    "gamma": (lambda: GammaRegressor(alpha=1e-3, max_iter=1000), "positive"),
    "tweedie-1.5": (lambda: TweedieRegressor(power=1.5, alpha=1e-3), "zero-inflated"),
    "tweedie-1-log": (lambda: TweedieRegressor(power=1.0, alpha=0.0), "counts"),
    "tweedie-3": (lambda: TweedieRegressor(power=3.0, alpha=1e-2, max_iter=1000), "positive"),
    "tweedie-0-auto-identity": (lambda: TweedieRegressor(power=0.0, alpha=0.1), "signed"),
    "tweedie-0-log": (lambda: TweedieRegressor(power=0.0, link="log"), "positive"),
    "tweedie-2-identity": (
        lambda: TweedieRegressor(power=2.0, link="identity", alpha=0.0, max_iter=1000),
        "positive",
    ),
}

#: Largest absolute / relative differences against scikit-learn, for the report.
MEASURED: dict[str, float] = {}


@functools.cache
def fitted(name: str) -> tuple[Any, np.ndarray, Scorer]:
    factory, kind = MODELS[name]
    X, y = data(kind)
    model = factory().fit(X, y)
    return model, X, compile_scorer(model)


def final(model: Any) -> Any:
    return model[-1] if isinstance(model, Pipeline) else model


def _note(model: Any, X: np.ndarray, scorer: Scorer) -> None:
    ours = scorer.score_records(to_records(scorer, X)).values
    theirs = model.predict(X)
    assert ours is not None
    finite = np.isfinite(ours) & np.isfinite(theirs)
    diff = np.abs(ours - theirs)[finite]
    rel = diff / np.maximum(np.abs(theirs[finite]), 1e-300)
    if diff.size:
        MEASURED["abs"] = max(MEASURED.get("abs", 0.0), float(diff.max()))
        MEASURED["rel"] = max(MEASURED.get("rel", 0.0), float(rel.max()))


@pytest.mark.parametrize("name", list(MODELS))
def test_training_data(name: str) -> None:
    model, X, scorer = fitted(name)
    assert np.ptp(model.predict(X)) > 0
    assert_parity(model, None, X, scorer=scorer, context=name)
    _note(model, X, scorer)


@pytest.mark.parametrize("name", list(MODELS))
def test_the_link_is_scikit_learns(name: str) -> None:
    """The log link ends in ``exp_link``; the identity link has no inverse to apply."""
    model, _, _ = fitted(name)
    kernels = [op["kernel"] for op in compile_estimators(model).header["ops"]]
    log = type(final(model)._base_loss.link).__name__ == "LogLink"
    assert ("exp_link" in kernels) == log, (name, kernels)
    assert log == (name not in ("tweedie-0-auto-identity", "tweedie-2-identity"))


@pytest.mark.parametrize("name", list(MODELS))
def test_extreme_values(name: str) -> None:
    """0, tiny, huge and +-1e300 in each end feature: exp overflows to inf and underflows
    to 0 on both sides, or both refuse (scikit-learn checks finiteness only of the input)."""
    model, X, scorer = fitted(name)
    for f in (0, X.shape[1] - 1):
        for v in (0.0, -0.0, 1e-300, 5e-324, F32_MAX, 1e39, -1e39, 1e300, -1e300):
            rows = X[:4].copy()
            rows[:, f] = v
            assert_same_outcome(model, None, rows, scorer=scorer, context=f"x{f}={v!r}")
            _note(model, rows, scorer)


def test_exp_overflow_and_underflow_thresholds() -> None:
    """A linear predictor equal to x0 exactly: rows at and around exp's overflow (709.78)
    and underflow (-745.13, through the subnormals) thresholds."""
    X, y = data("counts")
    est = PoissonRegressor().fit(X, y)
    est.coef_ = np.array([1.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    est.intercept_ = 0.0
    edge = [709.0, 709.78, 709.782712893384, np.nextafter(709.782712893384, 800.0), 710.0]
    edge += [-700.0, -708.4, -740.0, -745.0, -745.1332191019411, -745.14, -746.0, -800.0]
    rows = np.zeros((len(edge), 6))
    rows[:, 0] = edge
    got = est.predict(rows)
    assert np.isinf(got).any() and (got == 0).any() and ((got > 0) & (got < 1e-307)).any()
    scorer = compile_scorer(est)
    assert_parity(est, None, rows, scorer=scorer)
    _note(est, rows, scorer)


@pytest.mark.parametrize("name", ["poisson", "gamma", "tweedie-0-auto-identity"])
def test_nan_and_infinity_refused(name: str) -> None:
    model, X, scorer = fitted(name)
    for f in range(3):
        for v in (math.nan, math.inf, -math.inf):
            rows = X[:3].copy()
            rows[2, f] = v
            err = assert_refused(model, None, rows, scorer=scorer)
            assert "record 3" in str(err) and f"'x{f}'" in str(err)


def test_parity_bar_catches_a_missing_inverse_link() -> None:
    """The linear predictor alone (identity where the model uses log) fails parity: the
    oracle would notice a plan that skipped exp."""
    model, X, scorer = fitted("poisson")
    ours = scorer.score_records(to_records(scorer, X[:20]))
    raw = final(model)._linear_predictor(X[:20])
    assert parity.disagreeing(ours.values, raw).any()
    assert not parity.disagreeing(ours.values, model.predict(X[:20])).any()


def test_an_unknown_link_is_refused() -> None:
    X, y = data("counts")
    est = PoissonRegressor().fit(X, y)
    est._base_loss = HalfBinomialLoss()  # a logit link: not a GLM regressor's
    with pytest.raises(UnsupportedEstimatorError, match=r"PoissonRegressor.*LogitLink.*log and"):
        compile_estimators(est)


def test_registered_with_options() -> None:
    registered = {r.cls: r for r in supported()}
    for cls in (PoissonRegressor, GammaRegressor, TweedieRegressor):
        assert cls in registered and registered[cls].options.strip(), cls


def test_zz_report_measured_differences() -> None:
    """Runs last: print the largest differences seen (``pytest -s``)."""
    print("\nGLMs, largest differences vs scikit-learn:", MEASURED)
    assert MEASURED and MEASURED["rel"] <= parity.RELATIVE_TOLERANCE
