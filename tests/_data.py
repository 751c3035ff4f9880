"""Shared test data: the named data sets the converter tests fit and score on.

``dataset(name)`` is one set the whole suite shares (built once per session);
a family of tests that needs its own variant under a common name (the SVM
tests scale ``diabetes``, the scaler tests spread ``regression`` over many
magnitudes) looks it up through ``datasets("svm")``, which tries the family's
variants first, then the shared sets.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
from sklearn.datasets import (
    load_breast_cancer,
    load_diabetes,
    load_iris,
    make_classification,
    make_regression,
)
from sklearn.preprocessing import StandardScaler

XY = tuple[np.ndarray, np.ndarray]


def _standardised(X: np.ndarray, y: np.ndarray) -> XY:
    return StandardScaler().fit_transform(X), y


def _float_target(X: np.ndarray, y: np.ndarray) -> XY:
    return X, y.astype(float)


def _constant_column() -> XY:  # a constant column: edges [-inf, inf], one bin
    X, y = make_regression(200, 4, noise=1.0, random_state=2)
    X = X.copy()
    X[:, 1] = 3.25
    return X, y


def _grid() -> XY:  # small integer features: many training points at the same distance
    rng = np.random.default_rng(7)
    X = rng.integers(0, 4, (400, 5)).astype(np.float64)
    return X, rng.integers(0, 4, 400)


def _counts(classes: int, features: int) -> XY:
    X, y = make_classification(
        400, features, n_informative=min(features, 10), n_classes=classes,
        n_clusters_per_class=1, random_state=classes,
    )  # fmt: skip
    return np.floor(np.abs(X) * 3), y


def _wide_magnitudes() -> XY:  # values across many magnitudes, some negative, some missing
    X, y = make_regression(300, 5, n_informative=5, noise=1.0, random_state=9)
    X = X * np.array([1.0, 10.0, 0.01, 2.0, 5.0]) + np.array([3.0, 0.0, 0.0, 1.0, 10.0])
    X[np.random.RandomState(9).rand(*X.shape) < 0.05] = np.nan
    return X, y


def _multi3_two_redundant() -> XY:
    return make_classification(300, 8, n_informative=5, n_classes=3, random_state=1)


SHARED: dict[str, Callable[[], XY]] = {
    "binary": lambda: make_classification(300, 8, n_informative=5, random_state=0),
    "multi3": lambda: make_classification(
        300, 8, n_informative=5, n_redundant=1, n_classes=3, random_state=1
    ),
    "multi4": lambda: make_classification(
        320, 10, n_informative=6, n_redundant=2, n_classes=4, random_state=2
    ),
    "multi5": lambda: make_classification(400, 12, n_informative=8, n_classes=5, random_state=2),
    # >= 9 classes: numpy sums rows pairwise, not in order
    "multi12": lambda: make_classification(
        600, 20, n_informative=12, n_classes=12, n_clusters_per_class=1, random_state=3
    ),
    "breast_cancer": lambda: load_breast_cancer(return_X_y=True),
    "cancer": lambda: _standardised(*load_breast_cancer(return_X_y=True)),
    "iris": lambda: load_iris(return_X_y=True),
    "regression": lambda: make_regression(300, 8, n_informative=6, noise=5.0, random_state=3),
    "diabetes": lambda: load_diabetes(return_X_y=True),
    "constant": _constant_column,
    "grid": _grid,
    "scaled": lambda: _scaled(),
    "binary01": lambda: _binary01(),
}


def _scaled() -> XY:
    X, y = make_regression(250, 4, n_informative=4, noise=2.0, random_state=5)
    return X * np.array([1e-3, 1.0, 37.0, 1e4]) + np.array([0.0, 3.0, -11.0, 0.5]), y


def _binary01() -> XY:
    X, y = dataset("counts-3-12")
    return (X > 1).astype(float), y


#: Variants a family of tests uses under a shared name.
FAMILIES: dict[str, dict[str, Callable[[], XY]]] = {
    "linear": {
        "multi3": _multi3_two_redundant,
        "wide": lambda: make_regression(200, 150, n_informative=40, noise=1.0, random_state=4),
    },
    "naive_bayes": {
        "multi3": _multi3_two_redundant,
        # 12 classes, 150 features: pairwise sums over both
        "many": lambda: make_classification(
            600, 150, n_informative=20, n_classes=12, n_clusters_per_class=1, random_state=2
        ),
    },
    "scalers": {
        "regression": lambda: _spread(
            make_regression(300, 8, n_informative=6, noise=5.0, random_state=3)
        ),
        "breast_cancer": lambda: _float_target(*load_breast_cancer(return_X_y=True)),
        "wide": lambda: _wide_classification(),  # > 128 columns: numpy's pairwise sum recurses
    },
    "mlp": {
        # 11 classes: numpy's blocked sums in softmax
        "many": lambda: make_classification(
            600, 15, n_informative=12, n_classes=11, random_state=5
        ),
        "regression": lambda: make_regression(300, 9, noise=2.0, random_state=1),
    },
    "svm": {
        "multi4": lambda: _letters(
            *make_classification(240, 7, n_informative=5, n_classes=4, random_state=3)
        ),
        "diabetes": lambda: _svm_diabetes(),
        "regression": lambda: _svm_regression(),
    },
    "neighbors": {
        "cancer": lambda: _first_columns(*load_breast_cancer(return_X_y=True), 12),
        "regression": lambda: make_regression(300, 6, noise=3.0, random_state=4),
    },
    "function": {"wide": _wide_magnitudes},
    # few distinct values: quantile bins collapse and are removed
    "discretizer": {"iris": lambda: _float_target(*load_iris(return_X_y=True))},
}


def _spread(Xy: XY) -> XY:
    X, y = Xy
    return X * np.array([1, 10, 1e3, 1e-3, 1, 1, 5, 1e6]) + 7.0, y


def _wide_classification() -> XY:
    X, y = make_classification(200, 300, n_informative=20, random_state=4)
    return X * np.exp(np.random.RandomState(4).randn(300)), y


def _letters(X: np.ndarray, y: np.ndarray) -> XY:
    return X, np.array(["a", "b", "c", "d"])[y]


def _svm_diabetes() -> XY:
    X, y = load_diabetes(return_X_y=True)
    return X * 10, y / 100


def _svm_regression() -> XY:
    X, y = make_regression(200, 18, noise=1.0, random_state=2)
    return X, y / 100


def _first_columns(X: np.ndarray, y: np.ndarray, n: int) -> XY:
    return X[:, :n], y


@functools.cache
def dataset(name: str, family: str | None = None) -> XY:
    """The data set ``name`` (features, target): ``family``'s variant if it has one.

    ``counts-<classes>-<features>`` are non-negative integer counts (naive Bayes).
    """
    recipe = FAMILIES.get(family or "", {}).get(name) or SHARED.get(name)
    if recipe is not None:
        return recipe()
    if name.startswith("counts-"):
        _, classes, features = name.split("-")
        return _counts(int(classes), int(features))
    raise KeyError(name)


def datasets(family: str) -> Callable[[str], XY]:
    """``dataset`` for one family of tests (its variants first, then the shared sets)."""
    assert family in FAMILIES, family
    return functools.partial(dataset, family=family)


def with_nan(X: np.ndarray, frac: float = 0.1, seed: int = 0) -> np.ndarray:
    """A copy of ``X`` with about ``frac`` of the cells missing (every feature gets some)."""
    rng = np.random.RandomState(seed)
    out = X.astype(np.float64).copy()
    out[rng.rand(*out.shape) < frac] = np.nan
    out[rng.randint(0, len(out), size=out.shape[1]), np.arange(out.shape[1])] = np.nan
    return out
