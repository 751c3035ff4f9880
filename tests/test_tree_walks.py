"""``tree_sum``'s paths give scikit-learn's leaves, bit for bit, on every path.

In blocks (eight rows or more), trees of at most ``LEAF_BITS`` leaves are scored by leaf
bitvectors, in float32 or float64, NaN following each split (a table look-up for the exit
leaf of trees of up to 8 leaves, de Bruijn's multiply above); other trees
are walked for all the block's rows (deep ones as deep as a balanced tree of their size,
then the rows not yet on a leaf); calls of fewer rows walk eight trees at once and, for
deep trees, stop once all eight are on their leaves (``EXIT_DEPTH``). Every row count
from 1 to 300 (around the 8-row and 128-row cuts) mixes the paths, with and without NaN
rows inside otherwise clean blocks, on trees deeper and shallower than the cuts, of 32
and 33 leaves, stumps, single leaves and leaves of several values."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import (
    GradientBoostingClassifier,
    GradientBoostingRegressor,
    HistGradientBoostingRegressor,
    RandomForestClassifier,
    RandomForestRegressor,
)

from mlbundle_runtime.kernels.trees import EXIT_DEPTH, LEAF_BITS
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
    if name == "32 leaves":  # deep, yet bitvectors: the bench forest's shape
        return RandomForestClassifier(n_estimators=17, max_leaf_nodes=32, random_state=0).fit(
            X, y > 0
        )
    if name == "33 leaves":  # one leaf too many for bitvectors: walked
        return RandomForestRegressor(n_estimators=5, max_leaf_nodes=33, random_state=0).fit(X, y)
    if name == "deep boosting":
        return GradientBoostingRegressor(n_estimators=19, max_depth=9, random_state=0).fit(X, y)
    if name == "stumps":  # depth 1, three outputs (one tree each per stage)
        classes = np.digitize(y, [-0.5, 0.5])
        return GradientBoostingClassifier(n_estimators=11, max_depth=1, random_state=0).fit(
            X, classes
        )
    if name == "shallow forest":  # leaves of three values, NaN in training
        classes = np.digitize(y, [-0.5, 0.5])
        return RandomForestClassifier(n_estimators=13, max_depth=2, random_state=0).fit(X, classes)
    if name == "leaves and splits":  # some trees a single leaf, some not
        return RandomForestRegressor(
            n_estimators=16, max_depth=3, min_impurity_decrease=0.08, random_state=3
        ).fit(X, y)
    return HistGradientBoostingRegressor(max_iter=29, random_state=0).fit(X, y)


CASES = [
    ("forest", False),
    ("forest", True),
    ("32 leaves", False),
    ("32 leaves", True),
    ("33 leaves", False),
    ("boosting", False),
    ("deep boosting", False),
    ("stumps", False),
    ("shallow forest", False),
    ("shallow forest", True),
    ("leaves and splits", False),
    ("histogram", False),
    ("histogram", True),
]
#: Around the cuts: fewer than 8 rows, one block (128) and a bit, two blocks and a bit.
COUNTS = list(range(1, 20)) + list(range(120, 137)) + list(range(250, 263)) + [300]


def _rows(X: np.ndarray, n: int, rng: np.random.Generator, nan: bool) -> np.ndarray:
    """``n`` clean rows; with ``nan``, a NaN row every 131 rows from row 5, so that some
    blocks hold one NaN row among clean ones and others none."""
    rows = np.nan_to_num(X[rng.integers(0, len(X), n)], nan=0.5)
    if nan:
        for i in range(5, n, 131):
            rows[i, i % rows.shape[1]] = np.nan
    return rows


@pytest.mark.parametrize(("name", "nan"), CASES)
def test_every_row_count_is_bit_identical(name: str, nan: bool) -> None:
    model = _model(name, nan)
    X, _ = _data(nan)
    trees = [e.tree_ for e in np.ravel(getattr(model, "estimators_", []))]
    leaves = [int((t.children_left < 0).sum()) for t in trees]
    if name in ("forest", "32 leaves", "deep boosting"):  # both sides of the cuts
        assert max(t.max_depth for t in trees) > EXIT_DEPTH
    if name in ("forest", "deep boosting", "33 leaves"):
        assert max(leaves) > LEAF_BITS
    if name == "32 leaves":
        assert max(leaves) == LEAF_BITS
    if name in ("boosting", "stumps", "shallow forest", "leaves and splits"):
        assert max(leaves) <= 8
    if name == "leaves and splits":
        assert min(leaves) == 1 and max(leaves) > 1, leaves
    scorer = compile_scorer(model)
    rng = np.random.default_rng(1)
    for n in COUNTS:
        rows = _rows(X, n, rng, nan)
        out = scorer.score_rows(rows)
        if isinstance(model, GradientBoostingClassifier):
            ((_, ours),) = out.extras  # decision_function: the sums, before the softmax
            theirs = model.decision_function(rows)
        elif hasattr(model, "predict_proba"):
            ours, theirs = out.proba, model.predict_proba(rows)
        else:
            ours, theirs = out.values, model.predict(rows)
        np.testing.assert_array_equal(ours, theirs, err_msg=f"{n} rows")


@pytest.mark.parametrize("name", ["boosting", "32 leaves"])
def test_bitvectors_at_every_threshold(name: str) -> None:
    """Rows at each split's threshold and one float32 step either side, in blocks: the
    float32 comparison of the bitvectors (against the largest float32 not above each
    float64 threshold) sends them as scikit-learn's ``float32(x) <= threshold`` does."""
    model = _model(name, False)
    X, _ = _data(False)
    rows = []
    for est in np.ravel(model.estimators_):
        tree = est.tree_
        for feature, t in zip(tree.feature, tree.threshold, strict=True):
            if feature < 0:
                continue  # a leaf
            t32 = np.float32(t)
            for v in (np.nextafter(t32, np.float32(-np.inf)), t32, np.nextafter(t32, 1e38)):
                row = X[len(rows) % len(X)].copy()
                row[feature] = float(v)
                rows.append(row)
    rows = np.asarray(rows)
    assert len(rows) > 128  # blocks, not the lone rows' path
    out = compile_scorer(model).score_rows(rows)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(out.proba, model.predict_proba(rows))
    else:
        np.testing.assert_array_equal(out.values, model.predict(rows))
