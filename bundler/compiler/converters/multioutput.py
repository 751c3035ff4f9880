"""MultiOutputRegressor and MultiOutputClassifier: one fitted estimator per target.

scikit-learn's ``predict`` stacks each of ``estimators_``'s predictions as a column
(``np.asarray([e.predict(X) for e in estimators_]).T``) and ``predict_proba`` lists each
classifier's; the wrapper validates nothing itself, each member validates X as it does
alone. So each member compiles as it would alone, on the same columns, and becomes one
target of a multi-output plan (format 2.3), its extras (``decision_function``) left out
as the wrapper exposes none. Chains (``ClassifierChain``, ``RegressorChain``), which feed
earlier targets' predictions to later ones, are not compiled.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sklearn.multioutput import MultiOutputClassifier, MultiOutputRegressor

from bundler.compiler._builder import Cols, MultiPrediction, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError


@register_converter(
    MultiOutputRegressor,
    "one target per fitted estimator (each a regressor that compiles with one output)",
)
@register_converter(
    MultiOutputClassifier,
    "one target per fitted estimator (each a classifier that compiles with one output); "
    "predict_proba per target",
)
def convert_multi_output(
    est: Any, builder: PlanBuilder, cols: Cols
) -> Prediction | MultiPrediction:
    task = "regression" if isinstance(est, MultiOutputRegressor) else "classification"
    outputs = []
    for k, member in enumerate(est.estimators_):
        builder.push(f"estimators_[{k}]")
        try:
            result = convert(member, builder, cols)
        finally:
            builder.pop()
        if not isinstance(result, Prediction) or result.task != task:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: estimators_[{k}] ({type(member).__name__}) does not "
                f"compile as a single-output {task}; valid: each member predicts one target"
            )
        outputs.append(replace(result, extras=()))
    if len(outputs) == 1:  # a y of shape (n, 1): one target, as for a plain estimator
        return outputs[0]
    return MultiPrediction(tuple(outputs))
