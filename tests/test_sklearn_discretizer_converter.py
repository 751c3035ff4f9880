"""KBinsDiscretizer compiles to ``np.searchsorted(bin_edges_[j][1:-1], x, side="right")``.

The strategies differ only in how ``fit`` places the edges, so every strategy
is scored exactly at each inner edge and a few float64 steps either side (and,
with ``dtype=np.float32``, at float32 neighbours: the input is rounded to
float32 before the search). Values outside the fitted range land in the first
or last bin; NaN and infinity are refused, as is a value beyond float32's range
when ``dtype=np.float32``. The one-hot encodings (sparse or dense) must equal
scikit-learn's bit for bit.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import KBinsDiscretizer
from sklearn.tree import DecisionTreeRegressor

from bundler.errors import UnsupportedEstimatorError
from tests._data import datasets
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    f32_neighbours,
)
from tests._transform_parity import assert_features_identical, ulp_steps

F32_MAX = float(np.finfo(np.float32).max)


pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("discretizer")


STRATEGIES = {
    "uniform": {"strategy": "uniform"},
    "quantile": {"strategy": "quantile"},
    "quantile-linear": {"strategy": "quantile", "quantile_method": "linear"},
    "kmeans": {"strategy": "kmeans"},
}


def edge_probes(est: Any, base: np.ndarray, float32: bool) -> np.ndarray:
    """Rows with one column at an inner edge, and float64 (float32) steps around it."""
    rows = []
    for j, edges in enumerate(est.bin_edges_):
        for e in edges[1:-1]:
            values = set(ulp_steps(float(e), 2))
            if float32:
                values |= set(f32_neighbours(np.array([e])).tolist())
            for v in sorted(values):
                row = base[len(rows) % len(base)].copy()
                row[j] = v
                rows.append(row)
    return np.array(rows)


@functools.cache
def fitted(strategy: str, encode: str, ds: str, float32: bool) -> tuple[Any, Any]:
    X, y = dataset(ds)
    kbins = KBinsDiscretizer(
        n_bins=6, encode=encode, dtype=np.float32 if float32 else None, **STRATEGIES[strategy]
    )
    # A LogisticRegression fitted on float32 features computes in float32 (its coef_ is
    # float32): that is the linear converter's business, so float32 output feeds a tree.
    logistic = encode == "onehot" and not float32
    final = LogisticRegression() if logistic else DecisionTreeRegressor(random_state=0)
    target = y > np.median(y) if logistic else y
    model = make_pipeline(kbins, final).fit(X, target)
    return model, compile_scorer(model)


CASES = [
    (strategy, encode, ds, float32)
    for strategy in STRATEGIES
    for encode in ("ordinal", "onehot-dense", "onehot")
    for ds in ("diabetes", "iris", "constant")
    for float32 in (False, True)
    if not (float32 and ds == "constant")
]


@pytest.mark.parametrize(("strategy", "encode", "ds", "float32"), CASES)
def test_bins_at_edges(strategy: str, encode: str, ds: str, float32: bool) -> None:
    model, scorer = fitted(strategy, encode, ds, float32)
    X, _ = dataset(ds)
    assert_parity(model, None, X, scorer=scorer)
    assert_features_identical(model, X, scorer, signed_zeros=False, context="training data")
    probes = edge_probes(model[0], X[:10], float32)
    assert len(probes) >= 5
    assert_features_identical(model, probes, scorer, signed_zeros=False, context="edge probes")
    assert_parity(model, None, probes, scorer=scorer, context="edge probes")


@pytest.mark.parametrize("float32", [False, True])
@pytest.mark.parametrize("encode", ["ordinal", "onehot"])
def test_out_of_range_and_refused_values(encode: str, float32: bool) -> None:
    model, scorer = fitted("quantile", encode, "diabetes", float32)
    X, _ = dataset("diabetes")
    for v in (-1e300, 1e300, 0.0, -0.0, 5e-324, F32_MAX, -F32_MAX, 3.4028235e38):
        rows = X[:3].copy()
        rows[1, 2] = v
        if assert_same_outcome(model, None, rows, scorer=scorer, context=f"value {v!r}"):
            assert_features_identical(model, rows, scorer, signed_zeros=False)
    for v in (math.nan, math.inf, -math.inf):
        rows = X[:3].copy()
        rows[2, 5] = v
        err = assert_refused(model, None, rows, scorer=scorer)
        assert "KBinsDiscretizer" in str(err) and "'x5'" in str(err)
    rows = X[:3].copy()
    rows[0, 0] = 1e39  # beyond float32: refused only when the discretizer casts to float32
    outcome = assert_same_outcome(model, None, rows, scorer=scorer)
    assert outcome is not float32


def test_n_bins_per_feature_and_subsample() -> None:
    X, y = dataset("diabetes")
    kbins = KBinsDiscretizer(
        n_bins=[2, 3, 4, 5, 6, 7, 8, 9, 10, 11],
        encode="onehot-dense",
        strategy="quantile",
        subsample=200,
        random_state=0,
    )
    model = make_pipeline(kbins, DecisionTreeRegressor(random_state=0)).fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer)
    probes = edge_probes(model[0], X[:10], False)
    assert_features_identical(model, probes, scorer, signed_zeros=False)


def test_unsorted_edges_refused() -> None:
    model, _ = fitted("uniform", "ordinal", "diabetes", False)
    broken = model[0]
    edges = broken.bin_edges_[3].copy()
    broken.bin_edges_[3] = edges[::-1]
    try:
        with pytest.raises(UnsupportedEstimatorError, match="not sorted"):
            compile_scorer(model)
    finally:
        broken.bin_edges_[3] = edges
