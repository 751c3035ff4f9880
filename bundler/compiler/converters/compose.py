"""Pipeline and ColumnTransformer: wiring only, no arithmetic of their own."""

from __future__ import annotations

from typing import Any

from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError


@register_converter(Pipeline, "steps in order; 'passthrough' steps")
def convert_pipeline(est: Pipeline, builder: PlanBuilder, cols: Cols) -> Cols | Prediction:
    value: Any = cols
    for name, step in est.steps:
        if step is None or step == "passthrough":
            continue
        if isinstance(value, Prediction):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: step {name!r} follows a final estimator"
            )
        builder.push(name)
        value = convert(step, builder, value)
        builder.pop()
    return value


@register_converter(
    ColumnTransformer,
    "columns by name, index or mask; remainder drop or passthrough; dense output",
)
def convert_column_transformer(est: ColumnTransformer, builder: PlanBuilder, cols: Cols) -> Cols:
    if est.transformer_weights:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: transformer_weights are not supported yet; "
            "valid: transformer_weights=None"
        )
    out = Cols(())
    for name, trans, _ in est.transformers_:
        positions = est._transformer_to_input_indices.get(name, [])
        if _is_drop(trans) or len(positions) == 0:
            continue
        sub = cols.take([int(p) for p in positions])
        if _is_passthrough(trans):
            out = out + sub
            continue
        builder.push(name)
        result = convert(trans, builder, sub)
        builder.pop()
        if not isinstance(result, Cols):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: transformer {name!r} is a predictor, not a transformer"
            )
        out = out + result
    if getattr(est, "sparse_output_", False):
        builder.sparse.update(out.idx)
    return out


def _is_drop(trans: object) -> bool:
    return isinstance(trans, str) and trans == "drop"


def _is_passthrough(trans: object) -> bool:
    """'passthrough', or the identity FunctionTransformer scikit-learn 1.9 stores for it."""
    if isinstance(trans, str):
        return trans == "passthrough"
    return (
        type(trans) is FunctionTransformer
        and trans.func is None
        and not trans.validate
    )
