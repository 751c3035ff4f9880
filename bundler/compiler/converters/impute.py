"""SimpleImputer: replace NaN by the fitted statistic of each column."""

from __future__ import annotations

import math

import numpy as np
from sklearn.impute import SimpleImputer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@register_converter(
    SimpleImputer,
    "missing_values=nan; mean, median, most_frequent, constant; numeric and string columns",
)
def convert_simple_imputer(est: SimpleImputer, builder: PlanBuilder, cols: Cols) -> Cols:
    if not _is_nan(est.missing_values):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: missing_values={est.missing_values!r} is not supported; "
            "valid: missing_values=np.nan"
        )
    if est.add_indicator:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: add_indicator=True is not supported; valid: False"
        )
    stats = list(est.statistics_)
    # scikit-learn drops columns that were entirely missing in training (their
    # statistic is NaN) unless keep_empty_features is set, which fills 0 instead.
    keep = [j for j, s in enumerate(stats) if not _is_nan(s) or est.keep_empty_features]
    src = cols.take(keep)
    fills = []
    numeric = []
    for j in keep:
        stat = stats[j]
        if isinstance(stat, str):
            # A text column: the fill is the code of a category of the same input.
            owner = builder.make_categorical(cols.idx[j], est)
            fills.append(builder.code(owner, stat))
        else:
            numeric.append(cols.idx[j])
            fills.append(0.0 if _is_nan(stat) else float(stat))
    if numeric:
        builder.check(Cols(tuple(numeric)), est, allow_nan=True)
    out = builder.derived(src)
    builder.emit(
        "impute", est, builder.idx(src), builder.idx(out), builder.array(fills, np.float64)
    )
    return out
