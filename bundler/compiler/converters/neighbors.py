"""k nearest neighbours: KNeighborsClassifier and KNeighborsRegressor on a KD or ball tree.

The plan carries the fitted tree (``_tree.get_arrays()``: the training points, the
point order, node ranges and bounds) and walks it exactly as scikit-learn's
``BinaryTree.query`` does (depth first, nearer child first, a node trimmed when its
lower bound exceeds the current k-th distance, ties with the k-th distance rejected by
the neighbour heap, results sorted by scikit-learn's ``simultaneous_sort``), so equal
distances resolve to the same neighbours, in the same order. Distances are scikit-learn's
own loops (no BLAS): euclidean ``sqrt(sum((x - y)^2))``, manhattan, chebyshev.

``algorithm="brute"`` (also what ``"auto"`` picks for more than 15 features, or for
``n_neighbors >= n_samples // 2``) scans every training point (``knn_brute``) with the same
exact distances. scikit-learn's own brute-force search differs in two ways the plan does
not copy: its euclidean distances come from BLAS as ``||x||^2 - 2 x.y + ||y||^2``
(rounding that depends on the CPU and BLAS, up to ``sqrt(eps) * ||x||`` near zero), and it
orders and picks equally distant neighbours by its parallel strategy, which depends on
the rows scored at once and the thread count. The plan takes equally distant points in
training order, and the parity check (``bundler.parity.reference_model``) compares with
scikit-learn's prediction on its exact distances with ties in that order: equally distant
neighbours are interchangeable, as they are between two runs of scikit-learn itself.

RadiusNeighborsClassifier / RadiusNeighborsRegressor replay scikit-learn's ``query_radius``
on the fitted tree (``radius_query``: its node bounds decide, as in scikit-learn, points at
the radius within rounding), or scan every point for a brute-force fit, with its leaf test
``rdist <= rdist(radius)`` (``sum((x - y)^2) <= r * r`` for euclidean). A row with no
neighbour gets the ``outlier_label`` (probability 1 for it), is refused when there is none
(scikit-learn raises), or, for the regressor, NaN. A brute-force
fit with uniform weights and an outlier label is refused: scikit-learn's brute shortcut
(``RadiusNeighborsClassMode``) compares the outlier label with class positions, not classes,
and gives such rows zero probabilities.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.neighbors import (
    KNeighborsClassifier,
    KNeighborsRegressor,
    RadiusNeighborsClassifier,
    RadiusNeighborsRegressor,
)

from bundler.compiler._builder import (
    Cols,
    MultiPrediction,
    PlanBuilder,
    Prediction,
    regression_outputs,
)
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError

#: effective_metric_ -> (kernel code, the metric's p; chebyshev (p=inf) takes max, not pow)
_METRICS = {
    "euclidean": (0, 2.0),
    "l2": (0, 2.0),
    "manhattan": (1, 1.0),
    "cityblock": (1, 1.0),
    "l1": (1, 1.0),
    "chebyshev": (2, 0.0),
    "infinity": (2, 0.0),
}
_WEIGHTS = {"uniform": 0, "distance": 1}


def _metric_code(est: Any, builder: PlanBuilder) -> tuple[int, float]:
    """The kernel's metric code and p; refuses other weights and metrics."""
    origin = builder.origin(est)
    if callable(est.weights) or est.weights not in _WEIGHTS:
        raise UnsupportedEstimatorError(
            f"{origin}: weights={est.weights!r} is not supported; valid: 'uniform', 'distance'"
        )
    metric = est.effective_metric_
    params = dict(getattr(est, "effective_metric_params_", None) or {})
    if not isinstance(metric, str) or metric not in _METRICS or params:
        raise UnsupportedEstimatorError(
            f"{origin}: metric={est.metric!r} (p={est.p!r}, metric_params={est.metric_params!r})"
            " is not supported; valid: 'minkowski' with p=1, 2 or inf, 'euclidean', "
            "'manhattan' ('cityblock', 'l1'), 'chebyshev' ('infinity'), 'l2', without "
            "metric_params"
        )
    if est._fit_method not in ("kd_tree", "ball_tree", "brute"):
        raise UnsupportedEstimatorError(
            f"{origin}: algorithm={est.algorithm!r} is not supported; valid: 'auto', "
            "'kd_tree', 'ball_tree', 'brute'"
        )
    return _METRICS[metric]


def _training_data(est: Any, builder: PlanBuilder) -> np.ndarray:
    """The training points a full scan compares with (float64: scikit-learn's brute search
    on a float32 fit computes in float32)."""
    data = np.asarray(est._fit_X)
    if data.dtype != np.float64:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a brute-force search fitted on {data.dtype} data computes "
            "in that precision; fit on float64 data or with algorithm='kd_tree'/'ball_tree'"
        )
    if data.ndim != 2 or data.shape[0] == 0 or not np.isfinite(data).all():
        raise UnsupportedEstimatorError(f"{builder.origin(est)}: no finite training data")
    return data


def _neighbours(est: Any, builder: PlanBuilder, cols: Cols) -> tuple[Cols, int]:
    """Emit the neighbour search; return the 2k columns (indices, then distances) and weighting."""
    origin = builder.origin(est)
    code, p = _metric_code(est, builder)
    if est._fit_method == "brute":
        return _brute_neighbours(est, builder, cols, code), _WEIGHTS[est.weights]
    k = int(est.n_neighbors)
    data, idx_array, node_data, node_bounds = est._tree.get_arrays()
    data = np.asarray(data, dtype=np.float64)
    # (a float32 fit keeps _fit_X in float32; the tree holds it in float64, exactly)
    if data.shape != est._fit_X.shape or not np.array_equal(data, est._fit_X):
        raise UnsupportedEstimatorError(f"{origin}: the tree does not hold the training data")
    if k > data.shape[0]:
        raise UnsupportedEstimatorError(f"{origin}: n_neighbors exceeds the training samples")
    n_nodes = node_data.shape[0]
    if est._fit_method == "kd_tree":
        kind, bound_a, bound_b = 0, node_bounds[0], node_bounds[1]
    else:
        kind, bound_a = 1, node_bounds[0]
        bound_b = np.zeros_like(bound_a)
    builder.check(cols, est, allow_nan=False)
    out = builder.new_cols(
        [f"neighbour {j + 1}" for j in range(k)]
        + [f"distance to neighbour {j + 1}" for j in range(k)]
    )
    builder.emit(
        "knn_tree",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(data, np.float64),
        builder.array(idx_array, np.int64),
        builder.array(node_data["idx_start"], np.int64),
        builder.array(node_data["idx_end"], np.int64),
        builder.array(node_data["is_leaf"].astype(np.uint8), np.uint8),
        builder.array(np.reshape(bound_a, (n_nodes, data.shape[1])), np.float64),
        builder.array(np.reshape(bound_b, (n_nodes, data.shape[1])), np.float64),
        builder.array(node_data["radius"], np.float64),
        kind,
        code,
        p,
    )
    return out, _WEIGHTS[est.weights]


def _brute_neighbours(est: Any, builder: PlanBuilder, cols: Cols, code: int) -> Cols:
    k = int(est.n_neighbors)
    data = _training_data(est, builder)
    if k > data.shape[0]:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: n_neighbors exceeds the training samples"
        )
    builder.check(cols, est, allow_nan=False)
    out = builder.new_cols(
        [f"neighbour {j + 1}" for j in range(k)]
        + [f"distance to neighbour {j + 1}" for j in range(k)]
    )
    builder.emit(
        "knn_brute", est, builder.idx(cols), builder.idx(out), builder.array(data, np.float64), code
    )
    return out


_OPTIONS = (
    "algorithm kd_tree/ball_tree/brute (brute: exact distances, equally distant neighbours "
    "in training order); weights uniform/distance; metric minkowski p=1/2/inf, euclidean, "
    "manhattan/cityblock/l1, chebyshev/infinity, l2"
)

_ALL_INF = (
    "all its nearest neighbours are infinitely far away (a value too large for distances "
    "to be computed), so every distance weight is zero and scikit-learn refuses the row"
)


@register_converter(
    KNeighborsClassifier, _OPTIONS + "; predict_proba; multi-output (one vote per target)"
)
def convert_knn_classifier(
    est: KNeighborsClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    """Votes of the k neighbours' classes; a 2-D ``y`` votes per target over the same
    neighbours (``_y[:, k]``), as scikit-learn's ``predict`` loops over its outputs."""
    nbrs, weighting = _neighbours(est, builder, cols)
    if not est.outputs_2d_:
        return _votes(est, builder, nbrs, weighting, tuple(est.classes_), est._y, "")
    return MultiPrediction(
        tuple(
            _votes(est, builder, nbrs, weighting, tuple(classes), est._y[:, k], f"[{k}]")
            for k, classes in enumerate(est.classes_)
        )
    )


def _votes(
    est: Any,
    builder: PlanBuilder,
    nbrs: Cols,
    weighting: int,
    classes: tuple[Any, ...],
    y: np.ndarray,
    suffix: str,
) -> Prediction:
    """One ``knn_vote``: the votes per class (the label's argmax) and predict_proba."""
    out = builder.new_cols(
        [f"votes{suffix}[{c}]" for c in classes] + [f"proba{suffix}[{c}]" for c in classes]
    )
    builder.emit(
        "knn_vote",
        est,
        builder.idx(nbrs),
        builder.idx(out),
        builder.array(y, np.int64),
        weighting,
        message=_ALL_INF,
    )
    n = len(classes)
    return Prediction(
        "classification", out.take(range(n)), "argmax", classes, out.take(range(n, 2 * n))
    )


@register_converter(
    KNeighborsRegressor, _OPTIONS + "; multi-output (one mean per target, within 1e-9)"
)
def convert_knn_regressor(
    est: KNeighborsRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    """The neighbours' (weighted) mean target; per target for a 2-D ``y``. scikit-learn's
    uniform mean over several targets adds the k values in order (numpy reduces a strided
    axis), the kernel pairwise as for one target: the same up to 8 neighbours, within
    the parity bar beyond."""
    y = np.asarray(est._y)
    if y.dtype != np.float64 and not (
        np.issubdtype(y.dtype, np.integer) and np.abs(y).max(initial=0) < 2**53
    ):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: targets of dtype {y.dtype} are not supported "
            "(scikit-learn averages them in that dtype); fit on float64 targets"
        )
    nbrs, weighting = _neighbours(est, builder, cols)
    columns = [y] if y.ndim == 1 else list(y.T)
    names = ["prediction"] if y.ndim == 1 else [f"prediction[{k}]" for k in range(len(columns))]
    value = builder.new_cols(names)
    for k, target in enumerate(columns):
        builder.emit(
            "knn_mean",
            est,
            builder.idx(nbrs),
            builder.idx(value.take([k])),
            builder.array(target, np.float64),
            weighting,
        )
    return regression_outputs(value)


def _emit_radius_query(
    est: Any,
    builder: PlanBuilder,
    cols: Cols,
    out: Cols,
    y: np.ndarray,
    outlier: int,
    message: str,
    empty: float = math.nan,
) -> None:
    """The radius search over the fitted tree (or every point, for a brute-force fit)."""
    code, p = _metric_code(est, builder)
    radius = float(est.radius)
    if not (np.isfinite(radius) and radius >= 0):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: radius={est.radius!r} is not supported; valid: a finite "
            "number >= 0"
        )
    if est._fit_method == "brute":
        data = _training_data(est, builder)
        n, d = data.shape
        kind, idx_array, start, end, leaf = 2, np.arange(n), [0], [n], [1]
        bound_a = bound_b = np.zeros((1, d))
        node_radius = np.zeros(1)
    else:
        data, idx_array, node_data, node_bounds = est._tree.get_arrays()
        data = np.asarray(data, dtype=np.float64)
        if data.shape != est._fit_X.shape or not np.array_equal(data, est._fit_X):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: the tree does not hold the training data"
            )
        n_nodes, d = node_data.shape[0], data.shape[1]
        start, end = node_data["idx_start"], node_data["idx_end"]
        leaf, node_radius = node_data["is_leaf"].astype(np.uint8), node_data["radius"]
        if est._fit_method == "kd_tree":
            kind, bound_a, bound_b = 0, node_bounds[0], node_bounds[1]
        else:
            kind, bound_a = 1, node_bounds[0]
            bound_b = np.zeros_like(bound_a)
        bound_a = np.reshape(bound_a, (n_nodes, d))
        bound_b = np.reshape(bound_b, (n_nodes, d))
    builder.check(cols, est, allow_nan=False)
    builder.emit(
        "radius_query",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(data, np.float64),
        builder.array(idx_array, np.int64),
        builder.array(start, np.int64),
        builder.array(end, np.int64),
        builder.array(leaf, np.uint8),
        builder.array(bound_a, np.float64),
        builder.array(bound_b, np.float64),
        builder.array(node_radius, np.float64),
        kind,
        code,
        p,
        radius,
        builder.array(y, np.float64),
        _WEIGHTS[est.weights],
        outlier,
        builder.array([empty], np.float64),
        message=message,
    )


_RADIUS_OPTIONS = (
    "algorithm kd_tree/ball_tree/brute; weights uniform/distance; metric minkowski p=1/2/inf, "
    "euclidean, manhattan/cityblock/l1, chebyshev/infinity, l2; finite radius"
)

_NO_NEIGHBOUR = (
    "no training point lies within the model's radius of this row, and the model has no "
    "outlier_label (scikit-learn raises); refit with outlier_label='most_frequent' or a "
    "class, or with a larger radius"
)


@register_converter(
    RadiusNeighborsClassifier,
    _RADIUS_OPTIONS + "; outlier_label None (refuses rows without neighbours), "
    "'most_frequent' or a training class; predict_proba; one output",
)
def convert_radius_classifier(
    est: RadiusNeighborsClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    origin = builder.origin(est)
    if est.outputs_2d_:
        raise UnsupportedEstimatorError(f"{origin}: multi-output classification is not supported")
    classes = tuple(est.classes_)
    outlier = -1
    if est.outlier_label_ is not None and est._fit_method == "brute" and est.weights == "uniform":
        raise UnsupportedEstimatorError(
            f"{origin}: with algorithm='brute' and weights='uniform', scikit-learn scores rows "
            "without neighbours by another rule than its tree search (all probabilities 0, or "
            "1 for the class at position outlier_label); refit with algorithm='kd_tree' or "
            "'ball_tree', weights='distance', or outlier_label=None"
        )
    if est.outlier_label_ is not None:
        label = est.outlier_label_[0]
        where = np.flatnonzero(est.classes_ == label)
        if where.size != 1:
            raise UnsupportedEstimatorError(
                f"{origin}: outlier_label={est.outlier_label!r} is not a training class, so "
                "scikit-learn predicts a label with no probability; valid: None, "
                "'most_frequent' or one of the classes"
            )
        outlier = int(where[0])
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    _emit_radius_query(est, builder, cols, proba, np.asarray(est._y), outlier, _NO_NEIGHBOUR)
    return Prediction("classification", proba, "argmax", classes, proba)


@register_converter(
    RadiusNeighborsRegressor, _RADIUS_OPTIONS + "; NaN without neighbours; one output"
)
def convert_radius_regressor(
    est: RadiusNeighborsRegressor, builder: PlanBuilder, cols: Cols
) -> Prediction:
    y = np.asarray(est._y)
    if y.ndim != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multi-output regression is not supported"
        )
    if y.dtype != np.float64 and not (
        np.issubdtype(y.dtype, np.integer) and np.abs(y).max(initial=0) < 2**53
    ):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: targets of dtype {y.dtype} are not supported; fit on "
            "float64 targets"
        )
    value = builder.new_cols(["prediction"])
    with np.errstate(invalid="ignore"):  # scikit-learn's empty_obs: NaN in the targets' dtype
        empty = float(np.full_like(y[:1], np.nan)[0])
    _emit_radius_query(est, builder, cols, value, y, -1, "", empty)
    return Prediction("regression", value, "value")
