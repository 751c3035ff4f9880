"""SimpleImputer: replace NaN by the fitted statistic of each column, as ``transform`` does.

- Columns whose statistic is NaN (all missing in training) are dropped, unless
  ``keep_empty_features`` (then the statistic is the fill: 0, or ``fill_value``).
- The statistics are cast to the dtype seen in ``fit`` (``_fill_dtype``) first.
- A text statistic (``most_frequent`` / ``constant`` on strings) is a category:
  the fill is that category's code.
- ``validate_data`` refuses infinity in numeric data, but not in an imputer fitted
  on object (mixed) data, whose numbers are never checked.
- ``add_indicator`` appends a 0/1 column per feature that had missing values in
  training (``indicator_.features_``), computed before any column is dropped.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.impute import SimpleImputer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _fill(stat: object, fit_dtype: np.dtype) -> float:
    """The statistic as ``statistics_.astype(_fill_dtype)`` leaves it, as a float64."""
    if fit_dtype.kind in "iuf":
        return float(np.asarray(stat, dtype=np.float64).astype(fit_dtype))
    return float(stat)  # type: ignore[arg-type]


@register_converter(
    SimpleImputer,
    "missing_values=nan; mean, median, most_frequent, constant (fill_value), callable; "
    "keep_empty_features; add_indicator; numeric and string columns; dense or sparse input",
)
def convert_simple_imputer(est: SimpleImputer, builder: PlanBuilder, cols: Cols) -> Cols:
    if not (isinstance(est.missing_values, float) and math.isnan(est.missing_values)):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: missing_values={est.missing_values!r} is not supported; "
            "valid: missing_values=np.nan (a plan reads every missing cell as NaN)"
        )
    fit_dtype = np.dtype(est._fit_dtype)
    stats = list(est.statistics_)
    keep = [j for j, s in enumerate(stats) if est.keep_empty_features or not _is_nan(s)]
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
            fills.append(_fill(stat, fit_dtype))
    if numeric:
        if fit_dtype.kind == "O":
            # object arrays are only checked for NaN (which is allowed here)
            builder.use_as_numbers(Cols(tuple(numeric)), est)
        else:
            builder.check(Cols(tuple(numeric)), est, allow_nan=True)
    out = builder.derived(src)
    if keep:
        builder.emit(
            "impute", est, builder.idx(src), builder.idx(out), builder.array(fills, np.float64)
        )
    result = Cols(out.idx, cols.sparse, cols.float32)
    if est.add_indicator:
        features = [int(f) for f in est.indicator_.features_]
        if features:
            flagged = cols.take(features)
            marks = builder.new_cols([f"missing({builder.name(c)})" for c in flagged.idx])
            builder.emit("missing_indicator", est, builder.idx(flagged), builder.idx(marks))
            result = result + Cols(marks.idx, cols.sparse, cols.float32)
    return result
