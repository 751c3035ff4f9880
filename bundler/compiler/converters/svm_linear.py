"""LinearSVC and LinearSVR (liblinear): plain linear decision values, no probabilities.

``LinearSVC`` is a ``LinearClassifierMixin`` (``decision_function`` then
``classes_[d > 0]`` or the argmax; one-vs-rest and crammer_singer both store
one row per class, or one row when binary); ``LinearSVR.predict`` is
``X @ coef_ + intercept_``. See ``linear.py`` for the arithmetic.
"""

from __future__ import annotations

from sklearn.svm import LinearSVC, LinearSVR

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import classification, linear_decision, regression


@register_converter(
    LinearSVC,
    "binary and multiclass (multi_class='ovr' or 'crammer_singer'), every loss/penalty; "
    "decision_function",
)
def convert_linear_svc(est: LinearSVC, builder: PlanBuilder, cols: Cols) -> Prediction:
    return classification(est, linear_decision(builder, est, cols))


@register_converter(LinearSVR, "every loss")
def convert_linear_svr(est: LinearSVR, builder: PlanBuilder, cols: Cols) -> Prediction:
    return regression(builder, est, cols)
