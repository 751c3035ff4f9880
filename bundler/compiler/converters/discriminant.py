"""LinearDiscriminantAnalysis: a linear classifier with scikit-learn's probability rule.

``decision_function`` is ``LinearClassifierMixin``'s (``X @ coef_.T + intercept_``, one
column when binary), ``predict`` is ``classes_[d > 0]`` or the first argmax, and
``predict_proba`` is ``[1 - expit(d), expit(d)]`` when binary, else ``softmax(d)``
(``LinearDiscriminantAnalysis.predict_proba``). Every solver ('svd', 'lsqr', 'eigen'),
shrinkage and priors end in the same ``coef_`` / ``intercept_``.
"""

from __future__ import annotations

from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import classification, linear_decision


@register_converter(
    LinearDiscriminantAnalysis,
    "every solver, shrinkage and priors; binary and multiclass; predict_proba (expit pair "
    "or softmax), decision_function (transform is not compiled)",
)
def convert_lda(est: LinearDiscriminantAnalysis, builder: PlanBuilder, cols: Cols) -> Prediction:
    decision = linear_decision(builder, est, cols)
    proba = builder.new_cols([f"proba[{c}]" for c in est.classes_])
    kernel = "expit_pair" if len(decision) == 1 else "softmax"
    builder.emit(kernel, est, builder.idx(decision), builder.idx(proba))
    return classification(est, decision, proba)
