"""QuadraticDiscriminantAnalysis compiles to plans that predict what scikit-learn predicts.

Identical labels and probabilities within 1e-9 (the scores too, checked directly against
``_decision_function``): binary and multi-class, priors, reg_param, rank-deficient classes
string classes, a pipeline,
extreme values (scores overflowing to -inf and NaN probabilities as in scikit-learn), and
NaN and infinity refused as ``validate_data`` refuses them.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis as QDA
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler.compiler import compile_estimators, supported
from mlbundle_runtime.plan import PlanError, parse_plan
from mlbundle_runtime.scorer import Scorer
from tests._data import dataset
from tests._parity import TOL, assert_parity, assert_refused, compile_scorer, to_records

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


MODELS: dict[str, tuple[Any, Any]] = {
    # make_classification's redundant features make covariances singular: reg_param
    "binary": (lambda: QDA(reg_param=0.05), lambda: dataset("binary")),
    "multi3": (lambda: QDA(reg_param=0.02), lambda: dataset("multi3")),
    "iris": (lambda: QDA(), lambda: dataset("iris")),
    "multi12": (lambda: QDA(reg_param=0.1), lambda: dataset("multi12")),
    "priors": (lambda: QDA(priors=[0.6, 0.3, 0.1]), lambda: dataset("iris")),
    "reg": (lambda: QDA(reg_param=0.5), lambda: dataset("breast_cancer")),
    "scaled": (
        lambda: make_pipeline(StandardScaler(), QDA(reg_param=0.01)),
        lambda: dataset("breast_cancer"),
    ),
}

MEASURED: dict[str, float] = {}


@functools.cache
def fitted(name: str) -> tuple[Any, np.ndarray, Scorer]:
    factory, data = MODELS[name]
    X, y = data()
    model = factory().fit(X, y)
    return model, X, compile_scorer(model)


def check(model: Any, X: np.ndarray, scorer: Scorer, key: str) -> None:
    ours = assert_parity(model, None, X, scorer=scorer, context=key)
    with np.errstate(invalid="ignore"):
        diff = np.abs(ours.proba - model.predict_proba(X))
    finite = diff[np.isfinite(diff)]
    MEASURED[key] = max(MEASURED.get(key, 0.0), float(finite.max()) if finite.size else 0.0)


@pytest.mark.parametrize("name", list(MODELS))
def test_training_and_perturbed_rows(name: str) -> None:
    model, X, scorer = fitted(name)
    check(model, X, scorer, "training data")
    rng = np.random.default_rng(2)
    check(model, X + rng.normal(0, 0.5, X.shape) * X.std(axis=0), scorer, "perturbed")
    assert len(set(model.predict(X))) > 1


@pytest.mark.parametrize("name", list(MODELS))
def test_scores_match_decision_function(name: str) -> None:
    model, X, scorer = fitted(name)
    ws = np.zeros((len(X), scorer.plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    scorer.run(ws, str)
    ours = ws[:, list(scorer.plan.output.decision)]
    qda = model[-1] if hasattr(model, "steps") else model
    Xq = model[0].transform(X) if hasattr(model, "steps") else X
    theirs = qda._decision_function(Xq)
    assert np.all(np.abs(ours - theirs) <= np.maximum(TOL, 1e-12 * np.abs(theirs)))


@pytest.mark.parametrize("name", list(MODELS))
def test_extreme_values(name: str) -> None:
    model, X, scorer = fitted(name)
    for f in (0, X.shape[1] - 1):
        for v in (0.0, 1e-300, 1e5, -1e5, 1e154, 1e200, -1e300):
            rows = X[:4].copy()
            rows[:, f] = v
            check(model, rows, scorer, "extreme")


@pytest.mark.parametrize("name", ["binary", "priors", "scaled"])
def test_nan_and_infinity_refused(name: str) -> None:
    model, X, scorer = fitted(name)
    for f in (0, X.shape[1] - 1):
        for v in (math.nan, math.inf, -math.inf):
            rows = X[:3].copy()
            rows[2, f] = v
            exc = assert_refused(model, None, rows, scorer=scorer)
            assert "record 3" in str(exc) and f"'x{f}'" in str(exc)


def test_string_classes() -> None:
    X, y = dataset("iris")
    model = QDA().fit(X, np.array(["setosa", "versicolor", "virginica"])[y])
    check(model, X, compile_scorer(model), "training data")
    assert QDA in {r.cls for r in supported()}


@pytest.mark.parametrize(
    ("arg", "change"), [(2, "drop row"), (3, "drop row"), (4, "drop row"), (5, "drop row")]
)
def test_plan_checks_refuse_broken_ops(arg: int, change: str) -> None:
    model, _, _ = fitted("multi3")
    plan = compile_estimators(model)
    op = next(op for op in plan.header["ops"] if op["kernel"] == "qda")
    arrays = dict(plan.arrays)
    key = op["args"][arg]["array"]
    arrays[key] = np.ascontiguousarray(arrays[key][:-1])
    with pytest.raises(PlanError):
        parse_plan(plan.header, arrays)


def test_zz_report_measured_differences() -> None:
    print("\nQDA, largest probability differences vs scikit-learn:", MEASURED)
    assert all(v <= TOL for v in MEASURED.values())
