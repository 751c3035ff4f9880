"""KNeighborsClassifier / KNeighborsRegressor compile to plans that match scikit-learn exactly.

The plan walks scikit-learn's own KD / ball tree, so the neighbours, their order and
their distances are bit for bit scikit-learn's (checked directly against
``kneighbors``), ties between equally distant training points included: the data sets
below are full of them (iris has duplicate rows; the "grid" set has small integer
features). Labels, probabilities and regression values are then compared as usual.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._data import datasets
from tests._parity import (
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compile_scorer,
    kernels,
    to_records,
    written_plan,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("neighbors")


def neighbour_columns(scorer: Scorer, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plan's neighbour indices and distances (its knn_tree op's output columns)."""
    plan = scorer.plan
    ws = np.empty((len(X), plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    for op in plan.ops:
        getattr(kernels(), op.kernel)(ws, *op.args)
        if op.kernel == "knn_tree":
            dst = op.args[1]
            k = len(dst) // 2
            return ws[:, dst[:k]].astype(np.int64), ws[:, dst[k:]]
    raise AssertionError("no knn_tree op in the plan")


def assert_same_neighbours(model, scorer: Scorer, X: np.ndarray) -> None:
    """Indices in the same order and bit-identical distances, as ``kneighbors``."""
    dist, ind = model.kneighbors(X)
    ours_ind, ours_dist = neighbour_columns(scorer, X)
    bad = np.flatnonzero((ours_ind != ind).any(axis=1))
    assert bad.size == 0, (
        f"{bad.size} rows with other neighbours, e.g. row {bad[0]}: {ours_ind[bad[0]]} "
        f"vs scikit-learn {ind[bad[0]]} (distances {dist[bad[0]]})"
    )
    same = (ours_dist == dist) | (np.isnan(ours_dist) & np.isnan(dist))
    assert same.all(), f"distances differ: {ours_dist[~same][:3]} vs {dist[~same][:3]}"


def probes(X: np.ndarray, seed: int = 0) -> np.ndarray:
    """Training rows, rows halfway between training rows (equidistant ties), jittered rows."""
    rng = np.random.default_rng(seed)
    a = X[rng.integers(0, len(X), 60)]
    b = X[rng.integers(0, len(X), 60)]
    jitter = a + rng.normal(0, 0.05, a.shape) * X.std(axis=0)
    return np.vstack([X, (a + b) / 2, jitter])


METRICS = [
    {"metric": "minkowski", "p": 2},
    {"metric": "minkowski", "p": 1},
    {"metric": "minkowski", "p": np.inf},
    {"metric": "euclidean"},
    {"metric": "manhattan"},
    {"metric": "chebyshev"},
]


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize("metric", METRICS, ids=lambda m: f"{m['metric']}-p{m.get('p', '')}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["iris", "grid", "cancer"])
def test_classifier_matches(algorithm: str, metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    for k, leaf_size in ((1, 30), (6, 5), (17, 3)):
        model = KNeighborsClassifier(
            n_neighbors=k, algorithm=algorithm, weights=weights, leaf_size=leaf_size, **metric
        ).fit(X, y)
        scorer = compile_scorer(model)
        Q = probes(X, seed=k)
        assert_same_neighbours(model, scorer, Q)
        assert_parity(model, None, Q, scorer=scorer, context=f"k={k}")


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize("metric", METRICS[:3], ids=lambda m: f"p{m['p']}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["diabetes", "regression", "grid"])
def test_regressor_matches(algorithm: str, metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    for k, leaf_size in ((1, 30), (9, 4), (20, 2)):
        model = KNeighborsRegressor(
            n_neighbors=k, algorithm=algorithm, weights=weights, leaf_size=leaf_size, **metric
        ).fit(X, y)
        scorer = compile_scorer(model)
        Q = probes(X, seed=k)
        assert_same_neighbours(model, scorer, Q)
        assert_parity(model, None, Q, scorer=scorer, context=f"k={k}")


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
def test_many_neighbours_and_classes(algorithm: str) -> None:
    """k > 128 (numpy's blocked pairwise sums, introsort) and 130 classes (blocked normaliser)."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 6, (600, 3)).astype(np.float64)
    y = rng.integers(0, 130, 600)
    Q = probes(X)[::3]
    for weights in ("uniform", "distance"):
        clf = KNeighborsClassifier(150, algorithm=algorithm, weights=weights).fit(X, y)
        scorer = compile_scorer(clf)
        assert_same_neighbours(clf, scorer, Q)
        assert_parity(clf, None, Q, scorer=scorer)
        reg = KNeighborsRegressor(140, algorithm=algorithm, weights=weights).fit(X, y * 1.37)
        assert_parity(reg, None, Q)


def test_integer_targets_and_string_classes() -> None:
    X, y = dataset("grid")
    reg = KNeighborsRegressor(4, algorithm="kd_tree").fit(X, y * 1000 + 7)
    assert reg._y.dtype.kind == "i"
    assert_parity(reg, None, probes(X))
    clf = KNeighborsClassifier(4, algorithm="ball_tree", weights="distance").fit(
        X, np.array(["north", "south", "east", "west"])[y]
    )
    assert_parity(clf, None, probes(X))


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree"])
@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_extreme_values(algorithm: str, metric: str, weights: str) -> None:
    """0, +-1e300, +-1e160 (squares overflow), float64's largest: same outcome or both refuse."""
    X, y = dataset("iris")
    clf = KNeighborsClassifier(3, algorithm=algorithm, metric=metric, weights=weights).fit(X, y)
    reg = KNeighborsRegressor(3, algorithm=algorithm, metric=metric, weights=weights).fit(X, y)
    rows = []
    for value in (0.0, 1e300, -1e300, 1e160, -1e160, 1.7976931348623157e308, -1.7e308):
        for j in range(X.shape[1]):
            row = X[5 * j].copy()
            row[j] = value
            rows.append(row)
        rows.append(np.full(X.shape[1], value))
    for model in (clf, reg):
        scorer = compile_scorer(model)
        for r, row in enumerate(rows):
            assert_same_outcome(model, None, row[None, :], scorer=scorer, context=f"row {r}")


def test_all_neighbours_infinitely_far_is_refused_with_distance_weights() -> None:
    X, y = dataset("iris")
    clf = KNeighborsClassifier(3, algorithm="kd_tree", weights="distance").fit(X, y)
    row = np.full((1, X.shape[1]), 1e300)
    exc = assert_refused(clf, None, row, match="infinitely far")
    assert "distance to neighbour 1" in str(exc)
    # uniform weights accept it (every neighbour is training row 0, as scikit-learn says)
    uni = KNeighborsClassifier(3, algorithm="kd_tree").fit(X, y)
    assert_parity(uni, None, row)
    # the regressor returns NaN (0 / 0), as scikit-learn does
    reg = KNeighborsRegressor(3, algorithm="ball_tree", weights="distance").fit(X, y * 1.0)
    ours = assert_parity(reg, None, row)
    assert np.isnan(ours.values).all()


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_infinity_are_refused(bad: float) -> None:
    X, y = dataset("iris")
    model = KNeighborsClassifier(3, algorithm="kd_tree").fit(X, y)
    scorer = compile_scorer(model)
    for j in range(X.shape[1]):
        row = X[:1].copy()
        row[0, j] = bad
        assert_refused(model, None, row, scorer=scorer)


def test_pipeline_with_scaler_and_dataframe() -> None:
    import pandas as pd

    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    X = X.iloc[:, :10]
    model = make_pipeline(
        StandardScaler(), KNeighborsClassifier(7, algorithm="ball_tree", weights="distance")
    ).fit(X, y)
    assert_parity(model, None, X)
    assert isinstance(X, pd.DataFrame)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (KNeighborsClassifier(algorithm="brute"), "brute"),
        (KNeighborsClassifier(), "algorithm='auto'"),  # 30 features: auto picks brute
        (KNeighborsRegressor(algorithm="kd_tree", p=3), "p=3"),
        (KNeighborsClassifier(algorithm="ball_tree", metric="canberra"), "canberra"),
        (KNeighborsClassifier(algorithm="kd_tree", weights=lambda d: d), "weights"),
        (
            KNeighborsClassifier(
                algorithm="ball_tree", metric="minkowski", metric_params={"w": np.ones(30)}
            ),
            "metric_params",
        ),
    ],
)
def test_refused_options(model, match: str) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    model.fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=match):
        compile_estimators(model)


def test_multi_output_is_refused() -> None:
    X, y = dataset("iris")
    Y = np.column_stack([y, y[::-1]])
    for model in (KNeighborsClassifier(algorithm="kd_tree"), KNeighborsRegressor()):
        model.fit(X, Y)
        with pytest.raises(UnsupportedEstimatorError, match="multi-output"):
            compile_estimators(model)


def test_corrupted_tree_is_refused_by_the_reader() -> None:
    X, y = dataset("iris")
    compiled = compile_estimators(KNeighborsClassifier(3, algorithm="kd_tree").fit(X, y))
    op = next(o for o in compiled.header["ops"] if o["kernel"] == "knn_tree")
    key = op["args"][3]["array"]  # idx_array
    compiled.arrays[key] = compiled.arrays[key].copy()
    compiled.arrays[key][0] = len(X)
    from mlbundle_runtime.plan import PlanError

    with pytest.raises(PlanError, match="point index out of range"):
        written_plan(compiled)


def test_float32_fit() -> None:
    X, y = dataset("iris")
    model = KNeighborsClassifier(4, algorithm="kd_tree", weights="distance")
    model.fit(X.astype(np.float32), y)
    assert model._fit_X.dtype == np.float32
    scorer = compile_scorer(model)
    assert_same_neighbours(model, scorer, probes(X))
    assert_parity(model, None, probes(X), scorer=scorer)
