"""QuadraticDiscriminantAnalysis: per-class whitened distances, scores and probabilities.

scikit-learn's ``_decision_function``: per class ``i``,
``X2 = (X - means_[i]) @ (rotations_[i] * scalings_[i] ** -0.5)``, the score
``-0.5 * (sum(X2 ** 2, axis=1) + sum(log(scalings_[i]))) + log(priors_[i])``; ``predict`` is
its first argmax and ``predict_proba`` ``exp(l - log(sum(exp(l))))`` with
``l = score - max(score)`` (``qda`` kernel). The weights and the constants are computed here
with scikit-learn's own numpy expressions; the projection is a BLAS product in scikit-learn,
a compensated dot product in the plan (only BLAS's rounding differs). X is validated as
``validate_data`` does: NaN and infinity refused.
"""

from __future__ import annotations

import numpy as np
from sklearn.discriminant_analysis import QuadraticDiscriminantAnalysis

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


@register_converter(
    QuadraticDiscriminantAnalysis, "priors, reg_param, tol (any rank per class); predict_proba"
)
def convert_qda(est: QuadraticDiscriminantAnalysis, builder: PlanBuilder, cols: Cols) -> Prediction:
    origin = builder.origin(est)
    classes = tuple(est.classes_)
    k, d = len(classes), len(cols)
    means = np.asarray(est.means_, dtype=np.float64)
    if means.shape != (k, d):
        raise UnsupportedEstimatorError(
            f"{origin} was fitted on {means.shape[-1]} features but receives {d}"
        )
    with np.errstate(all="ignore"):  # as scikit-learn computes them
        pairs = zip(est.rotations_, est.scalings_, strict=True)
        weights = [np.asarray(R * (S ** (-0.5))) for R, S in pairs]
        u = np.asarray([np.sum(np.log(s)) for s in est.scalings_], dtype=np.float64)
        log_prior = np.log(np.asarray(est.priors_, dtype=np.float64))
    if any(w.dtype != np.float64 or w.ndim != 2 or w.shape[0] != d for w in weights):
        raise UnsupportedEstimatorError(f"{origin}: rotations_ do not match the features")
    width = max(w.shape[1] for w in weights)
    table = np.zeros((k * d, max(width, 1)))
    for c, w in enumerate(weights):
        table[c * d : (c + 1) * d, : w.shape[1]] = w
    builder.check(cols, est, allow_nan=False)
    out = builder.new_cols([f"score[{c}]" for c in classes] + [f"proba[{c}]" for c in classes])
    builder.emit(
        "qda",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(means, np.float64),
        builder.array(table, np.float64),
        builder.array([w.shape[1] for w in weights], np.int64),
        builder.array(np.concatenate([u, log_prior]), np.float64),
    )
    return Prediction(
        "classification", out.take(range(k)), "argmax", classes, out.take(range(k, 2 * k))
    )
