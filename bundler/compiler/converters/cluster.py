"""KMeans and MiniBatchKMeans: the nearest center's label, or the distances to every center.

Both score alike (``_labels_inertia_threadpool_limited`` for ``predict``,
``euclidean_distances`` for ``transform``). As the model's final estimator the plan
is a classification over the labels ``range(n_clusters)``: the decision columns
are the negated scores ``predict`` ranks by, and the distances are the
``transform`` extra. Anywhere else (a step before the model) the converter gives
the distances. ``validate_data`` refuses NaN and infinity; float32 and sparse input
(where scikit-learn computes in float32, or with sparse routines) are refused.

Label ties: scikit-learn keeps the first center with the smallest score, as the plan
does; the score's dot products are summed by BLAS there and left to right here, so
two centers within a few ulps of each other may be ranked differently (not seen on
the test data; ``transform`` agrees within 1e-12 there).
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans, MiniBatchKMeans
from sklearn.utils.extmath import row_norms

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _distances(
    builder: PlanBuilder, est: object, cols: Cols, centers: np.ndarray, mode: int, names: list[str]
) -> Cols:
    out = builder.new_cols(names)
    builder.emit(
        "kmeans_distances",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(centers, np.float64),
        builder.array(row_norms(centers, squared=True), np.float64),
        mode,
    )
    return out


def convert_kmeans(est: KMeans, builder: PlanBuilder, cols: Cols) -> Cols | Prediction:
    """Distances (a step) or cluster labels (the final estimator)."""
    centers = np.asarray(est.cluster_centers_)
    if cols.float32 or cols.sparse or centers.dtype != np.float64:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives float32 or sparse features (fitted on "
            f"{centers.dtype} data), where scikit-learn computes in float32 or with sparse "
            "routines; valid: dense float64 features"
        )
    if centers.shape[1] != len(cols):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: fitted on {centers.shape[1]} features, given {len(cols)}"
        )
    builder.check(cols, est, allow_nan=False)
    k = centers.shape[0]
    dist = _distances(builder, est, cols, centers, 1, [f"distance_{j}" for j in range(k)])
    if not builder.final:
        return dist
    score = _distances(builder, est, cols, centers, 0, [f"-score_{j}" for j in range(k)])
    return Prediction(
        "classification",
        score,
        "argmax",
        tuple(range(k)),
        None,
        extras=(("transform", dist, tuple(f"distance_{j}" for j in range(k))),),
    )


register_converter(KMeans, "predict (labels) as the model, transform (distances) as a step")(
    convert_kmeans
)
register_converter(
    MiniBatchKMeans, "predict (labels) as the model, transform (distances) as a step"
)(convert_kmeans)
