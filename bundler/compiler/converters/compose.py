"""Pipeline and ColumnTransformer: wiring, plus ColumnTransformer's weights.

ColumnTransformer's column selections (names, indices, slices, masks,
callables and ``make_column_selector``) are resolved by scikit-learn at fit time
into ``_transformer_to_input_indices``, so the plan uses those indices. In
scikit-learn 1.9 ``transformers_`` holds ``'passthrough'`` (remainder or named)
as a fitted identity ``FunctionTransformer``, converted like any other step.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.pipeline import Pipeline

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.compiler.converters.scalers import keeps_memory_order
from bundler.errors import UnsupportedEstimatorError


def _is(trans: object, word: str) -> bool:
    return isinstance(trans, str) and trans == word


@register_converter(Pipeline, "steps in order; 'passthrough' / None steps; nested pipelines")
def convert_pipeline(est: Pipeline, builder: PlanBuilder, cols: Cols) -> Cols | Prediction:
    value: Any = cols
    # Fitted on a DataFrame, the first step gets its Fortran-ordered values; steps that
    # keep the memory order pass it on (it changes how Normalizer's sums are added).
    fortran = getattr(est, "feature_names_in_", None) is not None and not cols.sparse
    final = builder.final
    active = [
        k for k, (_, step) in enumerate(est.steps) if not (step is None or _is(step, "passthrough"))
    ]
    for k, (name, step) in enumerate(est.steps):
        if k not in active:
            continue
        # only the last step of a final pipeline is the final estimator
        builder.final = final and k == active[-1]
        if isinstance(value, Prediction):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: step {name!r} follows a final estimator"
            )
        if isinstance(value, Cols):
            value = replace(value, fortran=fortran)
        builder.push(name)
        value = convert(step, builder, value)
        builder.pop()
        fortran = fortran and keeps_memory_order(step)
    builder.final = final
    return value


@register_converter(
    ColumnTransformer,
    "columns by name, index, slice, mask, callable or make_column_selector; 'drop' and "
    "'passthrough' transformers; remainder drop, passthrough or an estimator; "
    "transformer_weights; dense or sparse output (sparse_threshold)",
)
def convert_column_transformer(est: ColumnTransformer, builder: PlanBuilder, cols: Cols) -> Cols:
    weights = est.transformer_weights or {}
    builder.final = False  # its transformers transform (a KMeans among them gives distances)
    out = Cols(())
    for name, trans, selection in est.transformers_:
        positions = est._transformer_to_input_indices.get(name, [])
        if _is(trans, "drop") or len(positions) == 0:
            continue
        if hasattr(trans, "build_analyzer") and not isinstance(selection, (str, int)):
            # a list selects a 2-D frame, which a vectorizer reads as its column names
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: transformer {name!r} is a text vectorizer given the "
                f'columns {selection!r}; valid: one column named by a string, e.g. "text"'
            )
        sub = cols.take([int(p) for p in positions])
        if _is(trans, "passthrough"):
            result: Any = sub
        else:
            builder.push(name)
            result = convert(trans, builder, sub)
            builder.pop()
        if not isinstance(result, Cols):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: transformer {name!r} is a predictor, not a transformer"
            )
        weight = weights.get(name)
        if weight is not None and result.float32:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: transformer {name!r} outputs float32, which "
                "transformer_weights multiplies in float32; valid: float64 output"
            )
        if weight is not None:
            # scikit-learn's _transform_one: ``res * weight``
            builder.push(name)
            builder.use_as_numbers(result, est)
            weighted = builder.derived(result)
            builder.emit(
                "multiply",
                est,
                builder.idx(result),
                builder.idx(weighted),
                builder.array(np.full(len(result), float(weight)), np.float64),
            )
            builder.pop()
            result = Cols(weighted.idx, result.sparse)
        out = out + result
    # The output is sparse exactly when fit decided so (density < sparse_threshold);
    # sparse blocks are otherwise densified.
    return Cols(out.idx, bool(getattr(est, "sparse_output_", False)), out.float32)
