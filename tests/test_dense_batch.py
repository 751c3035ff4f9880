"""MLP layers of a batch run through numpy's matrix product (BLAS), single rows through
the compiled in-order sum; both must agree with scikit-learn within the parity bar, and
a refused cell in a batch must still be named by its row of the whole batch."""

from __future__ import annotations

import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import pytest
from sklearn.neural_network import MLPClassifier, MLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import ThreadpoolController

from bundler.compiler import compile_estimators
from mlbundle_runtime import scorer as scorer_module
from mlbundle_runtime.inputs import InputError
from mlbundle_runtime.scorer import BLOCK_ROWS, DENSE_BLAS_ROWS, Scorer
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

    def refuse(self: object, ws: np.ndarray, whole: bool) -> None:
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


def _blas_threads() -> int:
    return ThreadpoolController().select(user_api="blas").info()[0]["num_threads"]


def _watched_products(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, int]]:
    """(rows, BLAS threads, multiply-adds) of every layer's product from now on."""
    seen: list[tuple[int, int, int]] = []
    product = scorer_module._Dense._rows

    def watch(self: Any, ws: np.ndarray) -> None:
        seen.append((ws.shape[0], _blas_threads(), ws.shape[0] * self.coef.size))
        product(self, ws)

    monkeypatch.setattr(scorer_module._Dense, "_rows", watch)
    return seen


def test_a_batch_on_threads_holds_blas_to_one_thread_and_gives_the_setting_back(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model, X = _fit("classifier", "relu")
    scorer = Scorer(compile_estimators(model).load(), kernels(), threads=2)
    rows = np.tile(X, (4, 1))
    want = scorer.score_rows(rows).proba
    before = _blas_threads()
    assert before > 1  # else this test shows nothing
    seen = _watched_products(monkeypatch)
    assert np.array_equal(scorer.score_rows(rows).proba, want)
    assert seen and {threads for _, threads, _ in seen} == {1}
    # one product per layer and block: the block is not cut into small products
    assert max(n for n, _, _ in seen) == BLOCK_ROWS
    assert _blas_threads() == before
    # one thread of ours, and a single block: held too
    seen.clear()
    for one in (Scorer(compile_estimators(model).load(), kernels(), threads=1), scorer):
        assert np.allclose(one.score_rows(rows[: BLOCK_ROWS + 5]).proba, want[: BLOCK_ROWS + 5])
        assert np.allclose(one.score_rows(rows[:200]).proba, want[:200])
    assert seen and {threads for _, threads, _ in seen} == {1}
    assert _blas_threads() == before
    # two batches at once, from two threads: both right, and the setting given back
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda _: scorer.score_rows(rows).proba, range(2)))
    assert all(np.array_equal(r, want) for r in results)
    assert _blas_threads() == before


def test_without_a_blas_limit_layers_are_cut_small(monkeypatch: pytest.MonkeyPatch) -> None:
    model, X = _fit("classifier", "relu")
    scorer = Scorer(compile_estimators(model).load(), kernels(), threads=2)
    rows = np.tile(X, (4, 1))
    want = scorer.score_rows(rows).proba
    monkeypatch.setattr(scorer_module._ONE_BLAS_THREAD, "_usable", False)
    seen = _watched_products(monkeypatch)
    assert np.array_equal(scorer.score_rows(rows).proba, want)
    # each product small enough for OpenBLAS to keep it on the calling thread
    assert max(macs for _, _, macs in seen) < scorer_module._BLAS_ONE_THREAD
