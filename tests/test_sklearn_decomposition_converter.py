"""PCA and TruncatedSVD compile as pipeline steps whose outputs match scikit-learn's.

The projections are checked on their own (the plan's workspace against ``transform``)
and through the classifiers and regressors after them: training data, wide inputs (many
features and components: BLAS's blocked sums), whitening (components scikit-learn
would divide by eps refused), extreme values, NaN and infinity refused as ``validate_data``
refuses them, and float32 / sparse inputs refused at compile time.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.decomposition import PCA, TruncatedSVD
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.tree import DecisionTreeClassifier

from bundler.compiler import compile_estimators
from bundler.errors import UnsupportedEstimatorError
from mlbundle_runtime.scorer import Scorer
from tests._data import dataset
from tests._parity import assert_parity, assert_refused, compile_scorer, to_records

pytestmark = pytest.mark.usefixtures("quiet_sklearn")


#: Largest difference seen between the plan's projections and ``transform`` (``pytest -s``).
MEASURED: dict[str, float] = {}


def projection(scorer: Scorer, X: np.ndarray) -> np.ndarray:
    """The plan's output of its decomposition step (the op after the projection)."""
    ws = np.zeros((len(X), scorer.plan.width))
    scorer.encoder.fill_records(ws, to_records(scorer, X))
    scorer.run(ws, str)
    names = scorer.plan.columns
    want = [i for i, n in enumerate(names) if n.startswith(("pca", "truncatedsvd"))]
    white = [i for i in want if names[i].endswith("(whitened)")]
    return ws[:, white or want]


def assert_projection(step, scorer: Scorer, X: np.ndarray, Xin: np.ndarray, key: str) -> None:
    ours = projection(scorer, X)
    theirs = step.transform(Xin)
    diff = np.abs(ours - theirs)
    bar = np.maximum(1e-9, 1e-12 * np.abs(theirs))
    assert np.all(diff <= bar), float(diff.max())
    MEASURED[key] = max(MEASURED.get(key, 0.0), float(diff.max()))


CASES = {
    "pca": lambda: PCA(n_components=3),
    "pca-full": lambda: PCA(),
    "pca-whiten": lambda: PCA(n_components=4, whiten=True),
    "pca-randomized": lambda: PCA(n_components=5, svd_solver="randomized", random_state=0),
    "pca-arpack": lambda: PCA(n_components=3, svd_solver="arpack", random_state=0),
    "pca-fraction": lambda: PCA(n_components=0.9),
    "svd": lambda: TruncatedSVD(n_components=3, random_state=0),
    "svd-arpack": lambda: TruncatedSVD(n_components=4, algorithm="arpack", random_state=0),
}


@pytest.mark.parametrize("name", list(CASES))
@pytest.mark.parametrize("data", ["multi3", "breast_cancer"])
def test_classifier_after_decomposition(name: str, data: str) -> None:
    X, y = dataset(data)
    model = make_pipeline(StandardScaler(), CASES[name](), LogisticRegression(max_iter=2000))
    model.fit(X, y)
    scorer = compile_scorer(model)
    assert_parity(model, None, X, scorer=scorer, context="training data")
    assert_projection(model[1], scorer, X, model[0].transform(X), name)
    rng = np.random.default_rng(1)
    other = X[:50] + rng.normal(0, 1, (50, X.shape[1])) * X.std(axis=0)
    assert_parity(model, None, other, scorer=scorer, context="perturbed rows")


@pytest.mark.parametrize("name", list(CASES))
def test_regressor_and_tree_after_decomposition(name: str) -> None:
    X, y = dataset("regression")
    reg = make_pipeline(CASES[name](), LinearRegression()).fit(X, y)
    scorer = compile_scorer(reg)
    assert_parity(reg, None, X, scorer=scorer)
    assert_projection(reg[0], scorer, X, X, name)
    Xc, yc = dataset("multi3")
    tree = make_pipeline(CASES[name](), DecisionTreeClassifier(max_depth=4, random_state=0))
    tree.fit(Xc, yc)
    assert_parity(tree, None, Xc)


def test_wide_inputs_many_components() -> None:
    """200 features, 60 components: BLAS's blocked sums, against the compensated dot."""
    X, y = make_classification(400, 200, n_informative=30, random_state=3)
    X = X * np.linspace(0.01, 100, 200)
    for step in (PCA(60, whiten=True), TruncatedSVD(60, random_state=0)):
        model = make_pipeline(step, LogisticRegression(max_iter=3000)).fit(X, y)
        scorer = compile_scorer(model)
        assert_parity(model, None, X, scorer=scorer)
        assert_projection(model[0], scorer, X, X, "wide")


def test_whitening_components_without_variance_is_refused() -> None:
    """Rank-deficient data: scikit-learn divides components of no variance by eps, so they
    carry its BLAS rounding noise times 1/eps; refused, naming the components that work."""
    rng = np.random.default_rng(5)
    base = rng.normal(size=(120, 2))
    X = np.column_stack([base, base @ [[1.0, 2.0], [3.0, -1.0]], base[:, :1] * 2])
    y = base[:, 0] + 0.5 * base[:, 1]
    model = make_pipeline(PCA(whiten=True, svd_solver="full"), LinearRegression()).fit(X, y)
    assert (np.sqrt(model[0].explained_variance_) < np.finfo(float).eps).any()
    with pytest.raises(UnsupportedEstimatorError, match="n_components <= 2"):
        compile_estimators(model)
    kept = make_pipeline(PCA(2, whiten=True, svd_solver="full"), LinearRegression()).fit(X, y)
    scorer = compile_scorer(kept)
    assert_parity(kept, None, X, scorer=scorer)
    assert_projection(kept[0], scorer, X, X, "rank-deficient")


def test_extreme_values_and_refusals() -> None:
    X, y = dataset("multi3")
    model = make_pipeline(PCA(3), KNeighborsClassifier(5, algorithm="kd_tree")).fit(X, y)
    scorer = compile_scorer(model)
    for value in (0.0, 1e10, -1e10, 1e150):
        rows = X[:5].copy()
        rows[:, 2] = value
        assert_parity(model, None, rows, scorer=scorer, context=f"x2={value}")
    for bad in (math.nan, math.inf, -math.inf):
        rows = X[:3].copy()
        rows[1, 4] = bad
        exc = assert_refused(model, None, rows, scorer=scorer)
        assert "record 2" in str(exc) and "'x4'" in str(exc)


def test_float32_and_sparse_inputs_are_refused() -> None:
    X, y = dataset("multi3")
    model = make_pipeline(PCA(2), LogisticRegression()).fit(X.astype(np.float32), y)
    with pytest.raises(UnsupportedEstimatorError, match="float32"):
        compile_estimators(model)
    cats = np.floor(np.abs(X[:, :2]) * 2)
    onehot = make_pipeline(OneHotEncoder(), TruncatedSVD(2, random_state=0), LogisticRegression())
    onehot.fit(cats, y)
    with pytest.raises(UnsupportedEstimatorError, match="sparse"):
        compile_estimators(onehot)


def test_zz_report_measured_differences() -> None:
    print("\ndecomposition, largest projection differences vs transform:", MEASURED)
    assert all(v <= 1e-9 for v in MEASURED.values())
