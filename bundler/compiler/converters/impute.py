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
- Another marker (``missing_values=""``, ``"?"`` on text columns, ``-1`` on numbers): a
  cell *equal* to it is missing. A text marker is a category of the input (its code is
  what the plan compares, so ``""`` given for a categorical input is missing, exactly as
  ``X == ""`` is in scikit-learn), and NaN is refused ("Input contains NaN"), as
  ``validate_data(ensure_all_finite=True)`` refuses it. A plan cannot tell None from NaN:
  both are refused, where scikit-learn keeps a None cell as a value (a later encoder
  then usually refuses or ignores it).

IterativeImputer's ``transform`` is its ``initial_imputer_`` (a SimpleImputer, compiled as
above), then each ``(feat_idx, neighbor_feat_idx, estimator)`` of ``imputation_sequence_``
in order: the estimator's prediction from the current neighbour columns, clipped to
``_min_value``/``_max_value``, replaces the cells of ``feat_idx`` that were missing in the
input, and nothing else (``impute_predicted`` kernel). A feature kept empty
(``keep_empty_features``) is never missing there, so its steps write nothing. One
difference is batch-wide in scikit-learn and cannot be per row: when *every* cell of a
call's batch is missing, ``transform`` stops after the initial imputation; a plan scores
each row alone and imputes an all-missing row as it does in any batch with one observed
value.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.experimental import enable_iterative_imputer  # noqa: F401  (exposes the class)
from sklearn.impute import IterativeImputer, SimpleImputer

from bundler.compiler._builder import Cols, PlanBuilder, Prediction
from bundler.compiler._registry import convert, register_converter
from bundler.errors import UnsupportedEstimatorError


def _is_nan(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _nan_marker(est: Any) -> bool:
    """Whether the imputer's ``missing_values`` is NaN (the default)."""
    marker = est.missing_values
    return isinstance(marker, float) and math.isnan(marker)


def _fill(stat: object, fit_dtype: np.dtype) -> float:
    """The statistic as ``statistics_.astype(_fill_dtype)`` leaves it, as a float64."""
    if fit_dtype.kind in "iuf":
        return float(np.asarray(stat, dtype=np.float64).astype(fit_dtype))
    return float(stat)  # type: ignore[arg-type]


@register_converter(
    SimpleImputer,
    'missing_values=nan, a text marker ("", "?") or a number (dense, no add_indicator); '
    "mean, median, most_frequent, constant (fill_value), callable; keep_empty_features; "
    "add_indicator; numeric and string columns; dense or sparse input",
)
def convert_simple_imputer(est: SimpleImputer, builder: PlanBuilder, cols: Cols) -> Cols:
    marker = est.missing_values
    if not _nan_marker(est):
        if marker is None or not isinstance(marker, (str, int, float)) or isinstance(marker, bool):
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: missing_values={marker!r} is not supported (a plan "
                "reads None and NaN alike); valid: np.nan, a text marker or a number"
            )
        return _convert_marker(est, builder, cols)
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
    return with_indicator(est, builder, cols, Cols(out.idx, cols.sparse, cols.float32))


def with_indicator(est: Any, builder: PlanBuilder, cols: Cols, result: Cols) -> Cols:
    """``result`` followed by ``add_indicator``'s 0/1 columns, one per input column that had
    missing values in training (``indicator_.features_``), when the imputer adds them."""
    if not est.add_indicator:
        return result
    features = [int(f) for f in est.indicator_.features_]
    if not features:
        return result
    flagged = cols.take(features)
    marks = builder.new_cols([f"missing({builder.name(c)})" for c in flagged.idx])
    builder.emit("missing_indicator", est, builder.idx(flagged), builder.idx(marks))
    return result + Cols(marks.idx, cols.sparse, cols.float32)


def _convert_marker(est: SimpleImputer, builder: PlanBuilder, cols: Cols) -> Cols:
    """``missing_values`` other than NaN: cells equal to the marker take the statistic.

    Every column goes through ``impute_value``, which also refuses NaN, as scikit-learn
    refuses it in any column of the input; a column dropped for having no observed
    value in training is read too (an object-data one as text: only the marker was
    seen in it), then left out of the result.
    """
    marker = est.missing_values
    if est.add_indicator or cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: missing_values={marker!r} is supported without "
            "add_indicator, on dense input; valid: add_indicator=False, or missing_values=np.nan"
        )
    fit_dtype = np.dtype(est._fit_dtype)
    text_marker = isinstance(marker, str)
    if fit_dtype.kind in "iuf" and text_marker:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: a text missing_values={marker!r} on numeric data; "
            "valid: a number, or np.nan"
        )
    stats = list(est.statistics_)
    keep = [j for j, s in enumerate(stats) if est.keep_empty_features or not _is_nan(s)]
    markers: list[float] = []
    fills: list[float] = []
    numeric: list[int] = []
    for j, stat in enumerate(stats):
        col = cols.idx[j]
        dropped = j not in keep
        if isinstance(stat, str) or (dropped and fit_dtype.kind == "O" and text_marker):
            owner = builder.make_categorical(col, est)
            markers.append(builder.code(owner, marker) if text_marker else math.nan)
            fills.append(markers[-1] if dropped else builder.code(owner, stat))
        else:
            numeric.append(col)
            markers.append(math.nan if text_marker else float(marker))
            fills.append(0.0 if dropped else _fill(stat, fit_dtype))
    if numeric:
        if fit_dtype.kind == "O":
            # object data is only checked for NaN (impute_value refuses it), not infinity
            builder.use_as_numbers(Cols(tuple(numeric)), est)
        else:
            builder.check(Cols(tuple(numeric)), est, allow_nan=False)
    out = builder.derived(cols)
    if len(cols):
        builder.emit(
            "impute_value",
            est,
            builder.idx(cols),
            builder.idx(out),
            builder.array(markers, np.float64),
            builder.array(fills, np.float64),
            message="with this missing_values marker, NaN (null) is refused; give the marker",
        )
    return Cols(out.take(keep).idx, False, cols.float32)


@register_converter(
    IterativeImputer,
    "missing_values=nan; the initial_strategy as SimpleImputer; every estimator that compiles "
    "as a single-value regressor (BayesianRidge by default, the linear regressors, trees); "
    "n_nearest_features, imputation_order, skip_complete, min_value/max_value, "
    "keep_empty_features, add_indicator; sample_posterior refused (random draws)",
)
def convert_iterative_imputer(est: IterativeImputer, builder: PlanBuilder, cols: Cols) -> Cols:
    if not _nan_marker(est):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: missing_values={est.missing_values!r} is not supported; "
            "valid: np.nan"
        )
    if est.sample_posterior:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: sample_posterior=True imputes random draws from each "
            "estimator's posterior, which no plan can reproduce; valid: sample_posterior=False"
        )
    if cols.sparse or cols.float32:
        # validate_data refuses sparse input, and keeps float32 (then computes in float32)
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives {'sparse' if cols.sparse else 'float32'} features; "
            "valid: dense float64 input (the default dtype upstream)"
        )
    # validate_data(ensure_all_finite="allow-nan") before anything: the error names this step
    builder.check(cols, est, allow_nan=True)
    builder.push("initial_imputer_")
    try:
        work = convert_simple_imputer(est.initial_imputer_, builder, cols)
    finally:
        builder.pop()
    empty = np.asarray(est._is_empty_feature, dtype=bool)
    keep = [j for j in range(len(cols)) if est.keep_empty_features or not empty[j]]
    if len(work) != len(keep):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: the initial imputer keeps {len(work)} of {len(cols)} "
            f"features where the imputer keeps {len(keep)}; refit it with a SimpleImputer "
            "strategy of mean, median, most_frequent or constant"
        )
    current = list(work.idx)
    if est.n_iter_ > 0:
        for k, step in enumerate(est.imputation_sequence_):
            p = int(step.feat_idx)
            if empty[keep[p]]:
                continue  # kept empty: never missing in transform, nothing is written
            builder.push(f"imputation_sequence_[{k}]")
            try:
                current[p] = _impute_step(
                    builder, est, step, Cols(tuple(current)), cols.idx[keep[p]], current[p], p
                )
            finally:
                builder.pop()
    return with_indicator(est, builder, cols, Cols(tuple(current)))


def _impute_step(
    builder: PlanBuilder,
    est: IterativeImputer,
    step: Any,
    work: Cols,
    missing: int,
    current: int,
    p: int,
) -> int:
    """One ``_impute_one_feature(fit_mode=False)``: the column that replaces ``current``.

    The estimator predicts every row (a row's prediction depends on that row only), and
    ``impute_predicted`` keeps it, clipped, where input column ``missing`` is NaN.
    """
    inner = step.estimator
    final, builder.final = builder.final, False
    try:
        pred = convert(inner, builder, work.take([int(i) for i in step.neighbor_feat_idx]))
    except UnsupportedEstimatorError as exc:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} imputes with {type(inner).__name__}, which does not "
            f"compile: {exc}; valid: BayesianRidge, a linear regressor or another registered "
            "regressor"
        ) from None
    finally:
        builder.final = final
    if not isinstance(pred, Prediction) or pred.task != "regression" or len(pred.decision) != 1:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} imputes with {type(inner).__name__}, which does not predict "
            "one value per row; valid: a single-target regressor such as BayesianRidge"
        )
    out = builder.derived(Cols((current,)))
    builder.emit(
        "impute_predicted",
        est,
        builder.array([missing, pred.decision.idx[0], current], np.int64),
        builder.idx(out),
        builder.array([est._min_value[p]], np.float64),
        builder.array([est._max_value[p]], np.float64),
    )
    return out.idx[0]
