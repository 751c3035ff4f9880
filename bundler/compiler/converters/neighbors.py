"""k nearest neighbours: KNeighborsClassifier and KNeighborsRegressor on a KD or ball tree.

The plan carries the fitted tree (``_tree.get_arrays()``: the training points, the
point order, node ranges and bounds) and walks it exactly as scikit-learn's
``BinaryTree.query`` does (depth first, nearer child first, a node trimmed when its
lower bound exceeds the current k-th distance, ties with the k-th distance rejected by
the neighbour heap, results sorted by scikit-learn's ``simultaneous_sort``), so equal
distances resolve to the same neighbours, in the same order. Distances are scikit-learn's
own loops (no BLAS): euclidean ``sqrt(sum((x - y)^2))``, manhattan, chebyshev.

``algorithm="brute"`` (also what ``"auto"`` picks for more than 15 features, or for
``n_neighbors >= n_samples // 2``) is refused: scikit-learn's brute-force search takes
euclidean distances from BLAS as ``||x||^2 - 2 x.y + ||y||^2`` (CPU- and
BLAS-dependent rounding, which decides near ties and distance weights), and for every
metric it breaks ties between equally distant neighbours differently depending on its
parallel strategy, which depends on the number of rows scored at once and the machine's
thread count. A tree-based fit (``algorithm="kd_tree"`` or ``"ball_tree"``) has neither
problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError

#: effective_metric_ -> (kernel code, the metric's p; chebyshev (p=inf) takes max, not pow)
_METRICS = {"euclidean": (0, 2.0), "manhattan": (1, 1.0), "chebyshev": (2, 0.0)}
_WEIGHTS = {"uniform": 0, "distance": 1}


def _neighbours(est: Any, builder: PlanBuilder, cols: Cols) -> tuple[Cols, int]:
    """Emit the tree query; return the 2k columns (indices, then distances) and weighting."""
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
            "'manhattan', 'chebyshev', without metric_params"
        )
    if est._fit_method not in ("kd_tree", "ball_tree"):
        chosen = " (chosen by algorithm='auto')" if est.algorithm == "auto" else ""
        raise UnsupportedEstimatorError(
            f"{origin}: algorithm='brute'{chosen} cannot be reproduced exactly: scikit-learn's "
            "brute-force search computes euclidean distances through BLAS as "
            "||x||^2 - 2x.y + ||y||^2 (rounding that depends on the CPU and BLAS), and breaks "
            "ties between equally distant neighbours in an order that depends on how many "
            "rows are scored at once and on the thread count. Refit with "
            "algorithm='kd_tree' or algorithm='ball_tree' (same neighbours, exact distances)"
        )
    k = int(est.n_neighbors)
    data, idx_array, node_data, node_bounds = est._tree.get_arrays()
    data = np.asarray(data, dtype=np.float64)
    # (a float32 fit keeps _fit_X in float32; the tree holds it in float64, exactly)
    if data.shape != est._fit_X.shape or not np.array_equal(data, est._fit_X):
        raise UnsupportedEstimatorError(f"{origin}: the tree does not hold the training data")
    if k > data.shape[0]:
        raise UnsupportedEstimatorError(f"{origin}: n_neighbors exceeds the training samples")
    code, p = _METRICS[metric]
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


_OPTIONS = (
    "algorithm kd_tree/ball_tree (brute refused); weights uniform/distance; metric minkowski "
    "p=1/2/inf, euclidean, manhattan, chebyshev"
)

_ALL_INF = (
    "all its nearest neighbours are infinitely far away (a value too large for distances "
    "to be computed), so every distance weight is zero and scikit-learn refuses the row"
)


@register_converter(KNeighborsClassifier, _OPTIONS + "; predict_proba; one output")
def convert_knn_classifier(
    est: KNeighborsClassifier, builder: PlanBuilder, cols: Cols
) -> Prediction:
    if est.outputs_2d_:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multi-output classification is not supported"
        )
    classes = tuple(est.classes_)
    nbrs, weighting = _neighbours(est, builder, cols)
    out = builder.new_cols([f"votes[{c}]" for c in classes] + [f"proba[{c}]" for c in classes])
    builder.emit(
        "knn_vote",
        est,
        builder.idx(nbrs),
        builder.idx(out),
        builder.array(est._y, np.int64),
        weighting,
        message=_ALL_INF,
    )
    n = len(classes)
    return Prediction(
        "classification", out.take(range(n)), "argmax", classes, out.take(range(n, 2 * n))
    )


@register_converter(KNeighborsRegressor, _OPTIONS + "; one output")
def convert_knn_regressor(est: KNeighborsRegressor, builder: PlanBuilder, cols: Cols) -> Prediction:
    y = np.asarray(est._y)
    if y.ndim != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: multi-output regression is not supported"
        )
    if y.dtype != np.float64 and not (
        np.issubdtype(y.dtype, np.integer) and np.abs(y).max(initial=0) < 2**53
    ):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: targets of dtype {y.dtype} are not supported "
            "(scikit-learn averages them in that dtype); fit on float64 targets"
        )
    nbrs, weighting = _neighbours(est, builder, cols)
    value = builder.new_cols(["prediction"])
    builder.emit(
        "knn_mean",
        est,
        builder.idx(nbrs),
        builder.idx(value),
        builder.array(y, np.float64),
        weighting,
    )
    return Prediction("regression", value, "value")
