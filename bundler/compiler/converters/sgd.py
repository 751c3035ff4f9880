"""SGDClassifier and SGDRegressor: linear decision values, scikit-learn's probability rules.

``decision_function`` / ``predict`` are ``LinearClassifierMixin``'s (every loss),
and ``SGDRegressor.predict`` is ``X @ coef_.T + intercept_``; see ``linear.py``.
``predict_proba`` exists only for ``loss="log_loss"`` (``_predict_proba_lr``:
``[1 - expit(d), expit(d)]`` when binary, else ``expit`` per class divided by
the row sum) and ``loss="modified_huber"`` (``p = (clip(d, -1, 1) + 1) / 2``;
binary ``[1 - p, p]``, else divided by the row sum). In both one-vs-rest cases
a row whose values are all zero becomes uniform.
"""

from __future__ import annotations

from sklearn.linear_model import SGDClassifier, SGDRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import classification, linear_decision, regression

#: loss -> ovr_proba kind, for the losses that have predict_proba
_PROBA_KIND = {"log_loss": 0, "modified_huber": 1}


@register_converter(
    SGDClassifier,
    "every loss, binary and multiclass (one-vs-rest); predict_proba for loss='log_loss' "
    "and 'modified_huber'; decision_function",
)
def convert_sgd_classifier(est: SGDClassifier, builder: PlanBuilder, cols: Cols) -> Prediction:
    decision = linear_decision(builder, est, cols)
    kind = _PROBA_KIND.get(est.loss)
    if kind is None:
        return classification(est, decision)
    proba = builder.new_cols([f"proba[{c}]" for c in est.classes_])
    if len(decision) == 1:
        pair = "expit_pair" if kind == 0 else "huber_pair"
        builder.emit(pair, est, builder.idx(decision), builder.idx(proba))
    else:
        builder.emit("ovr_proba", est, builder.idx(decision), builder.idx(proba), kind)
    return classification(est, decision, proba)


@register_converter(SGDRegressor, "every loss and penalty, average")
def convert_sgd_regressor(est: SGDRegressor, builder: PlanBuilder, cols: Cols) -> Prediction:
    return regression(builder, est, cols)
