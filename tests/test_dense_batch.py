"""MLP layers of a batch run through numpy's matrix product (BLAS), single rows through
the compiled in-order sum; both must agree with scikit-learn within the parity bar, and
a refused cell in a batch must still be named by its row of the whole batch."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler.compiler import compile_estimators
from mlbundle_runtime import scorer as scorer_module
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import DENSE_BLAS_ROWS, Scorer
from tests._parity import TOL, kernels


def _fit(kind: str, activation: str) -> tuple[object, np.ndarray]:
    rng = np.random.default_rng(3)
    X = rng.standard_normal((400, 12)) * np.tile([1.0, 10.0, 100.0], 4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence
        if kind == "classifier":
            y = (X[:, 0] + X[:, 1] / 10 > 0).astype(int) + (X[:, 2] > 50)
            est = MLPClassifier(
                hidden_layer_sizes=(40, 30), activation=activation, max_iter=60, random_state=0
            )
        else:
            y = X[:, 0] - X[:, 1] / 10 + X[:, 2] / 100
            est = MLPRegressor(
                hidden_layer_sizes=(40,), activation=activation, max_iter=60, random_state=0
            )
        model = make_pipeline(StandardScaler(), est).fit(X, y)
    return model, X


@pytest.mark.parametrize("kind", ["classifier", "regressor"])
@pytest.mark.parametrize("activation", ["relu", "logistic", "tanh", "identity"])
def test_batch_and_rows_agree_with_sklearn(kind: str, activation: str) -> None:
    model, X = _fit(kind, activation)
    scorer = Scorer(compile_estimators(model).load(), kernels(), threads=2)
    assert scorer._segments is not None  # the plan has layers to run through BLAS
    n = 3000  # several blocks, on two threads
    rows = X[np.random.default_rng(0).integers(0, len(X), n)]
    batch = scorer.score_rows(rows)
    single = [scorer.score_rows(rows[i : i + 1]) for i in range(DENSE_BLAS_ROWS - 1)]
    if kind == "classifier":
        expected = model.predict_proba(rows)
        got = batch.proba
        one = np.concatenate([s.proba for s in single])
        assert batch.labels() == model.predict(rows).tolist()
    else:
        expected = model.predict(rows)
        got = batch.values
        one = np.concatenate([s.values for s in single])
    np.testing.assert_allclose(got, expected, rtol=0, atol=TOL)
    np.testing.assert_allclose(one, expected[: len(one)], rtol=0, atol=TOL)
    # the batch path really is another summation (BLAS), and still within the bar
    compiled = [scorer.score_rows(rows[i : i + 1]) for i in range(200)]
    ref = np.concatenate([s.proba if kind == "classifier" else s.values for s in compiled])
    np.testing.assert_allclose(got[:200], ref, rtol=0, atol=TOL)


def test_below_the_threshold_the_compiled_kernel_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    model, X = _fit("classifier", "relu")
    scorer = Scorer(compile_estimators(model).load(), kernels(), threads=1)
    rows = X[: DENSE_BLAS_ROWS - 1]

    def refuse(self: object, ws: np.ndarray) -> None:
        raise AssertionError("BLAS path taken for a small batch")

    monkeypatch.setattr(scorer_module._Dense, "run", refuse)
    scorer.score_rows(rows)  # the compiled kernels only
    with pytest.raises(AssertionError, match="BLAS path"):
        scorer.score_rows(X[:DENSE_BLAS_ROWS])


def test_batch_error_names_the_row() -> None:
    model, X = _fit("classifier", "relu")
    scorer = Scorer(compile_estimators(model).load(), kernels(), threads=2)
    rows = np.tile(X, (5, 1))
    rows[1500, 3] = np.nan
    with pytest.raises(InputError, match=r"row 1501\b"):
        scorer.score_rows(rows)
    small = X[:100].copy()
    small[70, 2] = np.inf
    with pytest.raises(InputError, match=r"row 71\b"):
        scorer.score_rows(small)
