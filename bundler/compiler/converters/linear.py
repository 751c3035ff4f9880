"""Linear models: ``X @ coef.T + intercept``, then scikit-learn's link function."""

from __future__ import annotations

import numpy as np
from sklearn.linear_model import LogisticRegression

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter


def emit_linear(
    builder: PlanBuilder,
    est: object,
    cols: Cols,
    coef: np.ndarray,
    intercept: np.ndarray,
    names: list[str],
) -> Cols:
    """Decision values; linear models refuse NaN and infinity like ``validate_data``."""
    builder.check(cols, est, allow_nan=False)
    coef = np.atleast_2d(coef)
    out = builder.new_cols(names)
    builder.emit(
        "linear",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(coef, np.float64),
        builder.array(np.broadcast_to(intercept, (coef.shape[0],)), np.float64),
    )
    return out


@register_converter(LogisticRegression, "binary (expit) and multiclass (softmax)")
def convert_logistic_regression(
    est: LogisticRegression, builder: PlanBuilder, cols: Cols
) -> Prediction:
    classes = tuple(est.classes_)
    if len(classes) <= 2:
        # scikit-learn 1.9: binary predict_proba is [1 - expit(d), expit(d)],
        # and predict is classes[d > 0].
        decision = emit_linear(builder, est, cols, est.coef_, est.intercept_, ["decision"])
        proba = builder.new_cols([f"proba[{c}]" for c in classes])
        builder.emit("expit_pair", est, builder.idx(decision), builder.idx(proba))
        return Prediction(
            "classification",
            decision,
            "positive",
            classes,
            proba,
            extras=(("decision_function", decision, ()),),
        )
    decision = emit_linear(
        builder, est, cols, est.coef_, est.intercept_, [f"decision[{c}]" for c in classes]
    )
    proba = builder.new_cols([f"proba[{c}]" for c in classes])
    builder.emit("softmax", est, builder.idx(decision), builder.idx(proba))
    return Prediction(
        "classification",
        decision,
        "argmax",
        classes,
        proba,
        extras=(("decision_function", decision, tuple(map(str, classes))),),
    )
