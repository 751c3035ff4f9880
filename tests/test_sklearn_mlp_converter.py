"""MLPClassifier / MLPRegressor compile to plans that match scikit-learn within 1e-9.

scikit-learn's forward pass multiplies by each layer with BLAS, whose summation order
(hence the last bits) depends on the BLAS build, the CPU and the number of rows scored
at once; the plan sums in input order. So values are compared within the 1e-9 bar and
the largest difference seen is checked to stay many orders of magnitude below it.
Labels must be identical. For extreme inputs, where outputs themselves reach 1e300,
an absolute bar is meaningless: there the values are compared relatively (1e-12).
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import (
    load_breast_cancer,
    make_multilabel_classification,
)
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler.compiler import compile_estimators
from tests._data import datasets
from tests._parity import assert_parity, assert_refused, compile_scorer, to_records

#: The largest difference from scikit-learn tolerated *in practice*; the bar is 1e-9.
EXPECTED_MAX = 1e-12


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("mlp")


def max_diff(model, X: np.ndarray) -> float:
    """Largest absolute difference of probabilities (or values) from scikit-learn."""
    scorer = compile_scorer(model)
    ours = scorer.score_records(to_records(scorer, X))
    if ours.values is not None:
        return float(np.max(np.abs(ours.values - model.predict(X))))
    return float(np.max(np.abs(ours.proba - model.predict_proba(X))))


ACTIVATIONS = ["identity", "logistic", "tanh", "relu"]


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("data", ["iris", "cancer", "multi5", "many"])
def test_classifier_matches(activation: str, data: str) -> None:
    X, y = dataset(data)
    for hidden in ((7,), (16, 8, 4)):
        model = MLPClassifier(hidden, activation=activation, max_iter=60, random_state=0).fit(X, y)
        assert_parity(model, None, X, context=str(hidden))
        assert max_diff(model, X) <= EXPECTED_MAX


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", ["squared_error", "poisson"])
@pytest.mark.parametrize("data", ["diabetes", "regression"])
def test_regressor_matches(activation: str, loss: str, data: str) -> None:
    X, y = dataset(data)
    if loss == "poisson":
        y = np.abs(y) / 50.0
    model = MLPRegressor(
        loss=loss,
        hidden_layer_sizes=(12, 6),
        activation=activation,
        max_iter=80,
        random_state=0,
    ).fit(X, y)
    assert_parity(model, None, X)
    assert max_diff(model, X) <= 1e-12 * max(1.0, float(np.abs(model.predict(X)).max()))


def test_binary_threshold_is_exactly_half() -> None:
    """predict is classes[expit(z) > 0.5]: z tiny but positive still gives class 0."""
    X, y = dataset("cancer")
    model = MLPClassifier((5,), max_iter=50, random_state=0).fit(X, y)
    # output weights zero, bias 1e-17: z = 1e-17 > 0 on every row, expit(z) == 0.5 exactly
    model.coefs_[-1] = np.zeros_like(model.coefs_[-1])
    model.intercepts_[-1] = np.full_like(model.intercepts_[-1], 1e-17)
    assert (model.predict_proba(X)[:, 1] == 0.5).all()
    assert (model.predict(X) == 0).all()
    assert_parity(model, None, X)


@pytest.mark.parametrize("model_kind", ["classifier", "regressor"])
def test_extreme_values(model_kind: str) -> None:
    X, y = dataset("iris")
    if model_kind == "classifier":
        model = MLPClassifier((6,), activation="relu", max_iter=50, random_state=0).fit(X, y)
    else:
        model = MLPRegressor(
            hidden_layer_sizes=(6,), activation="relu", max_iter=50, random_state=0
        ).fit(X, y)
    rows = []
    for value in (0.0, 1e300, -1e300, 1e-300, 1.7e308):
        for j in range(X.shape[1]):
            row = X[10 * j].copy()
            row[j] = value
            rows.append(row)
    R = np.array(rows)
    scorer = compile_scorer(model)
    ours = scorer.score_records(to_records(scorer, R))
    if model_kind == "classifier":
        assert ours.labels() == model.predict(R).tolist()
        want = model.predict_proba(R)
        assert np.allclose(ours.proba, want, rtol=0, atol=1e-9, equal_nan=True)
    else:
        want = model.predict(R)
        assert np.allclose(ours.values, want, rtol=1e-12, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    X, y = dataset("iris")
    model = MLPClassifier((4,), max_iter=30, random_state=0).fit(X, y)
    scorer = compile_scorer(model)
    for j in range(X.shape[1]):
        row = X[:1].copy()
        row[0, j] = bad
        assert_refused(model, None, row, scorer=scorer)


def test_pipeline_with_dataframe() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), MLPClassifier((8,), max_iter=40, random_state=0))
    model.fit(X, y)
    assert_parity(model, None, X)


def test_float32_fit_is_scored_in_float64() -> None:
    X, y = dataset("iris")
    model = MLPClassifier((5,), max_iter=40, random_state=0).fit(X.astype(np.float32), y)
    assert model.coefs_[0].dtype == np.float32
    assert_parity(model, None, X)


def test_multilabel_and_multi_output_compile_one_output_per_label() -> None:
    """Parity per label and target: tests/test_multi_output.py."""
    X, Y = make_multilabel_classification(100, 5, n_classes=3, random_state=0)
    clf = MLPClassifier((4,), max_iter=20, random_state=0).fit(X, Y)
    outputs = compile_estimators(clf).header["outputs"]
    assert [(o["name"], o["classes"], o["label_rule"]) for o in outputs] == [
        (f"y{k}", [0, 1], "positive") for k in range(3)
    ]
    reg = MLPRegressor(hidden_layer_sizes=(4,), max_iter=20, random_state=0).fit(X, Y.astype(float))
    assert len(compile_estimators(reg).header["outputs"]) == 3
