"""k-neighbours and radius-neighbours models compile to plans that match scikit-learn.

On a KD / ball tree the plan walks scikit-learn's own tree, so the neighbours, their order
and their distances are bit for bit scikit-learn's (checked directly against
``kneighbors``), ties between equally distant training points included: the data sets
below are full of them (iris has duplicate rows; the "grid" set has small integer
features). Labels, probabilities and regression values are then compared as usual.

A brute-force search (``algorithm="brute"``, or what ``"auto"`` picks above 15 features)
scans the training points with exact distances, equally distant ones in training order;
scikit-learn's brute path rounds euclidean distances through BLAS and picks equally
distant neighbours by batch size and thread count, so the build compares with
``bundler.parity.reference_model`` (scikit-learn's prediction on its exact distances).
The tests check that reference against scikit-learn's raw brute path too: same
distances within the bar, other neighbours only where distances are equal.
RadiusNeighbors* scan every training point with scikit-learn's leaf test.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.metrics import DistanceMetric
from sklearn.neighbors import (
    VALID_METRICS,
    KNeighborsClassifier,
    KNeighborsRegressor,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
)
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from bundler import parity
from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._data import datasets
from tests._parity import (
    TOL,
    assert_parity,
    assert_refused,
    assert_same_outcome,
    compare,
    compile_scorer,
    kernels,
    to_records,
    written_plan,
)

pytestmark = pytest.mark.usefixtures("quiet_sklearn")

dataset = datasets("neighbors")


def neighbour_columns(scorer: Scorer, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The plan's neighbour indices and distances (its knn_tree / knn_brute op's output)."""
    plan = scorer.plan
    ws = np.empty((len(X), plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    for op in plan.ops:
        getattr(kernels(), op.kernel)(ws, *op.args)
        if op.kernel in ("knn_tree", "knn_brute"):
            dst = op.args[1]
            k = len(dst) // 2
            return ws[:, dst[:k]].astype(np.int64), ws[:, dst[k:]]
    raise AssertionError("no knn_tree or knn_brute op in the plan")


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
        (KNeighborsRegressor(algorithm="kd_tree", p=3), "p=3"),
        (KNeighborsRegressor(algorithm="brute", p=3), "p=3"),
        (KNeighborsClassifier(algorithm="brute", metric="cosine"), "cosine"),
        (RadiusNeighborsClassifier(algorithm="brute", metric="canberra"), "canberra"),
        (RadiusNeighborsRegressor(weights=lambda d: d), "weights"),
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


def test_multi_output_radius_neighbours_are_refused() -> None:
    """k-neighbours compile several targets (tests/test_multi_output.py); radius
    neighbours do not yet."""
    X, y = dataset("iris")
    Y = np.column_stack([y, y[::-1]])
    for model in (
        RadiusNeighborsClassifier(1.0, outlier_label="most_frequent"),
        RadiusNeighborsRegressor(1.0),
    ):
        model.fit(X, Y)
        with pytest.raises(UnsupportedEstimatorError, match="multi-output"):
            compile_estimators(model)
    for model in (KNeighborsClassifier(algorithm="kd_tree"), KNeighborsRegressor()):
        header = compile_estimators(model.fit(X, Y)).header
        assert [o["name"] for o in header["outputs"]] == ["y0", "y1"]


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


# -- the metric's other names ----------------------------------------------------------


@pytest.mark.parametrize(
    ("alias", "same"),
    [
        ("cityblock", "manhattan"),
        ("l1", "manhattan"),
        ("l2", "euclidean"),
        ("infinity", "chebyshev"),
    ],
)
@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree", "brute"])
def test_metric_aliases(alias: str, same: str, algorithm: str) -> None:
    """ "cityblock" is the metric "manhattan" (scikit-learn's same DistanceMetric class)."""
    X, y = dataset("grid")
    Q = probes(X)
    if alias not in VALID_METRICS[algorithm]:  # "infinity" is a tree-only name
        with pytest.raises(ValueError, match="not valid"):
            KNeighborsClassifier(algorithm=algorithm, metric=alias).fit(X, y)
        return
    for weights in ("uniform", "distance"):
        model = KNeighborsClassifier(6, algorithm=algorithm, metric=alias, weights=weights)
        model.fit(X, y)
        assert model.effective_metric_ == alias
        scorer = compile_scorer(model)
        ours = assert_parity(model, None, Q, scorer=scorer)
        twin = KNeighborsClassifier(6, algorithm=algorithm, metric=same, weights=weights)
        assert np.array_equal(
            ours.proba, compile_scorer(twin.fit(X, y)).score_records(to_records(scorer, Q)).proba
        )
        if algorithm != "brute":
            assert_same_neighbours(model, scorer, Q)


# -- brute force -----------------------------------------------------------------------


def exact_neighbours(model, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's exact distances to every training point, for checking its brute path."""
    metric = DistanceMetric.get_metric(model.effective_metric_)
    return metric.pairwise(X, model._fit_X), model._fit_X


def assert_interchangeable(model, scorer: Scorer, X: np.ndarray) -> int:
    """scikit-learn's raw brute neighbours are ours up to equally distant ones: position by
    position the same distance within the bar, and where the neighbour differs, our pick and
    scikit-learn's are at the same exact distance. Returns how many picks differ."""
    dist, ind = model.kneighbors(X)
    ours_ind, ours_dist = neighbour_columns(scorer, X)
    exact, _ = exact_neighbours(model, X)
    rows = np.arange(len(X))[:, None]
    assert np.array_equal(ours_dist, exact[rows, ours_ind]), "the plan's distances are not exact"
    assert np.all(np.abs(ours_dist - dist) <= TOL), np.abs(ours_dist - dist).max()
    other = ours_ind != ind
    tie = np.abs(exact[rows, ind] - exact[rows, ours_ind]) <= TOL
    assert np.all(tie[other]), "a neighbour differs that is not at an equal distance"
    # every neighbour nearer than the k-th is in both lists
    return int(other.sum())


def off_grid(X: np.ndarray, seed: int = 1) -> np.ndarray:
    """Query rows at no training point (BLAS rounds near-zero euclidean distances to
    ~1e-8: the one place scikit-learn's raw brute distances are off by more than the bar)."""
    rng = np.random.default_rng(seed)
    a = X[rng.integers(0, len(X), 120)]
    return a + rng.normal(0, 0.3, a.shape) * X.std(axis=0)


@pytest.mark.parametrize("metric", METRICS, ids=lambda m: f"{m['metric']}-p{m.get('p', '')}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["iris", "grid", "cancer"])
def test_brute_classifier_matches(metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    for k in (1, 6, 17):
        model = KNeighborsClassifier(n_neighbors=k, algorithm="brute", weights=weights, **metric)
        model.fit(X, y)
        scorer = compile_scorer(model)
        Q = probes(X, seed=k)
        assert_parity(model, None, Q, scorer=scorer, context=f"k={k}")
        assert_interchangeable(model, scorer, off_grid(X, k))


@pytest.mark.parametrize("metric", METRICS[:3], ids=lambda m: f"p{m['p']}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["diabetes", "regression", "grid"])
def test_brute_regressor_matches(metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    for k in (1, 9, 20):
        model = KNeighborsRegressor(n_neighbors=k, algorithm="brute", weights=weights, **metric)
        model.fit(X, y)
        scorer = compile_scorer(model)
        assert_parity(model, None, probes(X, seed=k), scorer=scorer, context=f"k={k}")
        assert_interchangeable(model, scorer, off_grid(X, k))


def test_brute_matches_raw_scikit_learn_without_ties() -> None:
    """Without equally distant neighbours the reference is scikit-learn's raw brute path:
    continuous data, queries off the training points, every thread count and batch."""
    X, y = make_pipeline(StandardScaler()).fit_transform(dataset("cancer")[0]), dataset("cancer")[1]
    Q = off_grid(X, 5)
    for weights in ("uniform", "distance"):
        clf = KNeighborsClassifier(7, algorithm="brute", weights=weights).fit(X, y)
        reg = KNeighborsRegressor(7, algorithm="brute", weights=weights).fit(X, y * 2.5)
        for model in (clf, reg):
            scorer = compile_scorer(model)
            assert assert_interchangeable(model, scorer, Q) == 0
            ours = scorer.score_records(to_records(scorer, Q))
            for rows in (slice(None), slice(0, 7)):
                proba = model.predict_proba(Q[rows]) if model is clf else None
                got = scorer.score_records(to_records(scorer, Q[rows]))
                compare(got, model.predict(Q[rows]), proba, f"raw {weights} {rows}")
            assert len(ours) == len(Q)


def test_brute_ties_are_taken_in_training_order() -> None:
    """Every training point at the same distance: the plan takes the first k, in order."""
    X = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0], [0.0, 2.0]] * 3)
    y = np.arange(len(X)) % 4
    model = KNeighborsClassifier(6, algorithm="brute", weights="distance").fit(X, y)
    scorer = compile_scorer(model)
    ind, dist = neighbour_columns(scorer, np.zeros((1, 2)))
    assert ind[0].tolist() == [0, 1, 2, 3, 5, 6] and np.all(dist == 1.0)
    assert_parity(model, None, np.zeros((1, 2)), scorer=scorer)
    twin = parity.reference_model(model)
    assert twin.kneighbors(np.zeros((1, 2)))[1][0].tolist() == ind[0].tolist()


def test_auto_picks_brute_above_15_features() -> None:
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X)
    for model in (KNeighborsClassifier(), KNeighborsRegressor(weights="distance")):
        model.fit(X, y)
        assert model._fit_method == "brute"
        scorer = compile_scorer(model)
        assert [op.kernel for op in scorer.plan.ops].count("knn_brute") == 1
        assert_parity(model, None, np.vstack([X, off_grid(X)]), scorer=scorer)


def test_brute_in_a_pipeline_with_a_dataframe() -> None:
    X, y = load_breast_cancer(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), KNeighborsClassifier(5, weights="distance"))
    model.fit(X, y)
    assert model[-1]._fit_method == "brute"
    assert parity.reference_model(model) is not model
    assert parity.reference_model(model)[0] is model[0]
    assert_parity(model, None, X)


@pytest.mark.parametrize("metric", ["euclidean", "manhattan", "chebyshev"])
@pytest.mark.parametrize("weights", ["uniform", "distance"])
def test_brute_extreme_values(metric: str, weights: str) -> None:
    X, y = dataset("iris")
    clf = KNeighborsClassifier(3, algorithm="brute", metric=metric, weights=weights).fit(X, y)
    reg = KNeighborsRegressor(3, algorithm="brute", metric=metric, weights=weights).fit(X, y)
    rows = extreme_rows(X)
    for model in (clf, reg):
        scorer = compile_scorer(model)
        for r, row in enumerate(rows):
            assert_same_outcome(model, None, row[None, :], scorer=scorer, context=f"row {r}")


def extreme_rows(X: np.ndarray) -> list[np.ndarray]:
    rows = []
    for value in (0.0, 1e300, -1e300, 1e160, -1e160, 1.7976931348623157e308, -1.7e308):
        for j in range(X.shape[1]):
            row = X[5 * j].copy()
            row[j] = value
            rows.append(row)
        rows.append(np.full(X.shape[1], value))
    return rows


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_brute_and_radius_refuse_nan_and_infinity(bad: float) -> None:
    X, y = dataset("iris")
    for model in (
        KNeighborsClassifier(3, algorithm="brute"),
        RadiusNeighborsClassifier(1.0, outlier_label="most_frequent"),
        RadiusNeighborsRegressor(1.0, algorithm="brute"),
    ):
        model.fit(X, y)
        scorer = compile_scorer(model)
        for j in range(X.shape[1]):
            row = X[:1].copy()
            row[0, j] = bad
            assert_refused(model, None, row, scorer=scorer)


def test_brute_float32_fit_is_refused() -> None:
    X, y = dataset("iris")
    model = KNeighborsClassifier(3, algorithm="brute").fit(X.astype(np.float32), y)
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_estimators(model)


# -- radius neighbours -----------------------------------------------------------------

RADIUS = {"iris": 0.8, "grid": 1.5, "cancer": 3.0, "diabetes": 0.12, "regression": 2.5}


def radius_probes(X: np.ndarray, r: float, seed: int = 0) -> np.ndarray:
    """probes(), plus rows at exactly the radius from a training point along one axis (and
    one float64 step either side), and rows far from everything (no neighbour)."""
    rng = np.random.default_rng(seed)
    rows = [probes(X, seed)]
    base = X[rng.integers(0, len(X), 20)]
    for step in (r, np.nextafter(r, 0), np.nextafter(r, np.inf)):
        shifted = base.copy()
        shifted[np.arange(len(base)), rng.integers(0, X.shape[1], len(base))] += step
        rows.append(shifted)
    rows.append(X[:5] + 100.0 * X.std(axis=0).max())
    return np.vstack(rows)


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree", "brute"])
@pytest.mark.parametrize("metric", METRICS, ids=lambda m: f"{m['metric']}-p{m.get('p', '')}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["iris", "grid", "cancer"])
def test_radius_classifier_matches(algorithm: str, metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    r = RADIUS[data] * (0.7 if metric.get("p") == np.inf or metric["metric"] == "chebyshev" else 1)
    Q = radius_probes(X, r)
    shortcut = algorithm == "brute" and weights == "uniform"  # refused with an outlier label
    for outlier in (None,) if shortcut else ("most_frequent", int(y[3])):
        model = RadiusNeighborsClassifier(
            r, algorithm=algorithm, weights=weights, outlier_label=outlier, **metric
        ).fit(X, y)
        scorer = compile_scorer(model)
        if outlier is None:
            inside = parity.reference_model(model).radius_neighbors(Q, return_distance=False)
            Q = Q[[len(i) > 0 for i in inside]]
        ours = assert_parity(model, None, Q, scorer=scorer, context=f"outlier {outlier}")
        if algorithm != "brute" or metric["metric"] in ("manhattan", "chebyshev"):
            # exact distances on scikit-learn's side too: its raw predictions
            compare(ours, model.predict(Q), model.predict_proba(Q), "raw")
    if not shortcut:  # rows without neighbours are in the probes
        assert (ours.proba.max(axis=1) == 1).any()


@pytest.mark.parametrize("algorithm", ["kd_tree", "ball_tree", "brute"])
@pytest.mark.parametrize("metric", METRICS[:3], ids=lambda m: f"p{m['p']}")
@pytest.mark.parametrize("weights", ["uniform", "distance"])
@pytest.mark.parametrize("data", ["diabetes", "regression", "grid"])
def test_radius_regressor_matches(algorithm: str, metric: dict, weights: str, data: str) -> None:
    X, y = dataset(data)
    r = RADIUS[data] * (0.7 if metric["p"] == np.inf else 1)
    model = RadiusNeighborsRegressor(r, algorithm=algorithm, weights=weights, **metric).fit(X, y)
    Q = radius_probes(X, r)
    ours = assert_parity(model, None, Q)
    # the last probes have no neighbour: NaN (or NaN cast to integer targets' dtype)
    assert all(len(i) == 0 for i in model.radius_neighbors(Q[-5:], return_distance=False))
    assert np.unique(ours.values[-5:]).size == 1 and np.unique(ours.values).size > 2


def test_radius_without_outlier_label_refuses_rows_without_neighbours() -> None:
    X, y = dataset("iris")
    for algorithm in ("kd_tree", "brute"):
        model = RadiusNeighborsClassifier(0.5, algorithm=algorithm).fit(X, y)
        scorer = compile_scorer(model)
        assert_parity(model, None, X, scorer=scorer)
        far = np.vstack([X[:2], X[:1] + 50.0])
        exc = assert_refused(model, None, far, scorer=scorer, match="outlier_label")
        assert "record 3" in str(exc)


def test_radius_extreme_values() -> None:
    X, y = dataset("iris")
    for weights in ("uniform", "distance"):
        for model in (
            RadiusNeighborsClassifier(1.0, weights=weights, outlier_label="most_frequent"),
            RadiusNeighborsRegressor(1.0, weights=weights, algorithm="brute"),
            RadiusNeighborsClassifier(1e300, weights=weights, metric="manhattan"),
        ):
            model.fit(X, y)
            scorer = compile_scorer(model)
            for r, row in enumerate(extreme_rows(X)):
                assert_same_outcome(model, None, row[None, :], scorer=scorer, context=f"row {r}")


def test_radius_string_classes_and_many_neighbours() -> None:
    """Hundreds of neighbours per row (numpy's blocked pairwise sums) and string labels."""
    rng = np.random.default_rng(3)
    X = rng.integers(0, 6, (600, 3)).astype(np.float64)
    names = np.array(["north", "south", "east", "west"])[rng.integers(0, 4, 600)]
    Q = probes(X)[::3]
    for weights in ("uniform", "distance"):
        clf = RadiusNeighborsClassifier(4.0, weights=weights, outlier_label="east").fit(X, names)
        assert_parity(clf, None, Q)
        reg = RadiusNeighborsRegressor(4.0, weights=weights).fit(X, rng.normal(0, 1e4, 600))
        assert_parity(reg, None, Q)


@pytest.mark.parametrize(
    ("model", "match"),
    [
        (RadiusNeighborsClassifier(1.0, outlier_label=7), "outlier_label=7"),
        (RadiusNeighborsClassifier(np.inf), "radius=inf"),
        (RadiusNeighborsClassifier(1.0, algorithm="brute", outlier_label=0), "outlier_label"),
        (RadiusNeighborsRegressor(1.0, algorithm="brute", metric="minkowski", p=3), "p=3"),
    ],
)
def test_radius_refused_options(model, match: str) -> None:
    X, y = dataset("iris")
    model.fit(X, y)
    with pytest.raises(UnsupportedEstimatorError, match=match):
        compile_estimators(model)


@pytest.mark.parametrize(
    ("model", "kernel", "arg", "change"),
    [
        (KNeighborsClassifier(3, algorithm="brute"), "knn_brute", 2, "drop column"),
        (KNeighborsClassifier(3, algorithm="brute"), "knn_brute", 3, "metric 7"),
        (RadiusNeighborsClassifier(1.0), "radius_query", 14, "drop row"),
        (RadiusNeighborsClassifier(1.0), "radius_query", 14, "class 9"),
        (RadiusNeighborsClassifier(1.0), "radius_query", 16, "outlier 9"),
        (RadiusNeighborsRegressor(1.0), "radius_query", 3, "drop row"),
        (RadiusNeighborsRegressor(1.0), "radius_query", 13, "radius negative"),
        (RadiusNeighborsRegressor(1.0, algorithm="brute"), "radius_query", 2, "drop column"),
    ],
)
def test_plan_checks_refuse_broken_brute_ops(model, kernel: str, arg: int, change: str) -> None:
    from mlbundle_runtime.plan import PlanError

    X, y = dataset("iris")
    compiled = compile_estimators(model.fit(X, y))
    op = next(o for o in compiled.header["ops"] if o["kernel"] == kernel)
    if change.startswith(("metric", "outlier")):
        op["args"][arg] = int(change.split()[1])
    elif change == "radius negative":
        op["args"][arg] = -1.0
    elif change == "class 9":
        key = op["args"][arg]["array"]
        compiled.arrays[key] = compiled.arrays[key].copy()
        compiled.arrays[key][0] = 9.0
    else:
        key = op["args"][arg]["array"]
        data = compiled.arrays[key]
        compiled.arrays[key] = np.ascontiguousarray(
            data[:-1] if change == "drop row" else data[:, :-1]
        )
    with pytest.raises(PlanError):
        written_plan(compiled)
