"""``tree_sum``'s walks give scikit-learn's leaves, bit for bit, on every path.

Blocks of eight rows walk each tree its full depth; a lone row (and the rows left over
from a block) walks eight trees at once and, for deep trees, stops once all eight are on
their leaves (``EXIT_DEPTH``). Every row count from 1 to 19 mixes the two paths, with
and without NaN, on trees deeper and shallower than the cut."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
)

from mlbundle_runtime.kernels.trees import EXIT_DEPTH
from tests._parity import compile_scorer


def _data(nan: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    X = rng.standard_normal((600, 9))
    y = X[:, 0] * X[:, 1] + np.sin(3 * X[:, 2]) + 0.1 * rng.standard_normal(600)
    if nan:
        X[rng.random(X.shape) < 0.15] = np.nan
    return X, y


def _model(name: str, nan: bool) -> object:
    X, y = _data(nan)
    if name == "forest":
        return RandomForestClassifier(n_estimators=23, random_state=0).fit(X, y > 0)
    if name == "boosting":
        return GradientBoostingRegressor(n_estimators=37, max_depth=3, random_state=0).fit(X, y)
    if name == "deep boosting":
        return GradientBoostingRegressor(n_estimators=19, max_depth=9, random_state=0).fit(X, y)
    return HistGradientBoostingRegressor(max_iter=29, random_state=0).fit(X, y)


CASES = [
    ("forest", False),
    ("forest", True),
    ("boosting", False),
    ("deep boosting", False),
    ("histogram", False),
    ("histogram", True),
]


@pytest.mark.parametrize(("name", "nan"), CASES)
def test_every_row_count_is_bit_identical(name: str, nan: bool) -> None:
    model = _model(name, nan)
    X, _ = _data(nan)
    depths = [e.tree_.max_depth for e in np.ravel(getattr(model, "estimators_", []))]
    if depths:  # the bench's shapes: both sides of the cut are covered
        assert (max(depths) > EXIT_DEPTH) == (name != "boosting")
    scorer = compile_scorer(model)
    rng = np.random.default_rng(1)
    for n in range(1, 20):
        rows = np.ascontiguousarray(X[rng.integers(0, len(X), n)])
        if hasattr(model, "predict_proba"):
            np.testing.assert_array_equal(scorer.score_rows(rows).proba, model.predict_proba(rows))
        else:
            np.testing.assert_array_equal(scorer.score_rows(rows).values, model.predict(rows))
