"""Generalised linear models: ``predict`` is the inverse link of ``X @ coef_ + intercept_``.

``_GeneralizedLinearRegressor.predict`` validates X with NaN and infinity refused,
computes the linear predictor ``X @ coef_ + intercept_`` (``_linear_predictor``) and
applies ``_base_loss.link.inverse``: ``exp`` for the log link (``PoissonRegressor``,
``GammaRegressor``, ``TweedieRegressor`` with ``power > 0`` or ``link="log"``), the
value itself for the identity link (``TweedieRegressor`` with ``power <= 0`` or
``link="identity"``). The linear predictor goes through ``linear_dot2`` as every
linear model does (see ``linear.py``), the inverse log link through ``exp_link``.
"""

from __future__ import annotations

from typing import Any

from sklearn._loss.link import IdentityLink, LogLink
from sklearn.linear_model import GammaRegressor, PoissonRegressor, TweedieRegressor

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import emit_dot2, linear_params
from bundler.errors import UnsupportedEstimatorError


@register_converter(PoissonRegressor, "log link: predict = exp(X @ coef_ + intercept_)")
@register_converter(GammaRegressor, "log link: predict = exp(X @ coef_ + intercept_)")
@register_converter(
    TweedieRegressor,
    "any power; link 'log' (exp of the linear predictor), 'identity', or 'auto' "
    "(identity for power <= 0, else log)",
)
def convert_glm(est: Any, builder: PlanBuilder, cols: Cols) -> Prediction:
    link = est._base_loss.link
    coef, intercept = linear_params(builder, est, cols)
    if type(link) is IdentityLink:
        value = emit_dot2(builder, est, cols, coef, intercept, ["prediction"])
        return Prediction("regression", value, "value")
    if type(link) is not LogLink:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} uses the link {type(link).__name__}; only the log and "
            "identity links are compiled"
        )
    raw = emit_dot2(builder, est, cols, coef, intercept, ["linear_predictor"])
    value = builder.new_cols(["prediction"])
    builder.emit("exp_link", est, builder.idx(raw), builder.idx(value))
    return Prediction("regression", value, "value")
