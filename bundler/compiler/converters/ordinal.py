"""OrdinalEncoder: each category becomes its (possibly grouped) index, as ``transform`` does.

Known categories map to their index in ``categories_``, or, with infrequent
categories (``min_frequency`` / ``max_categories``), to the grouped index
``_default_to_infrequent_mappings`` gives them. A missing value that was seen in
training (NaN among ``categories_``) becomes ``encoded_missing_value``. Any other
value is unknown: refused with ``handle_unknown="error"``, else ``unknown_value``.
Every value is cast to ``dtype`` as scikit-learn's output is.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.preprocessing import OrdinalEncoder, TargetEncoder

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def categories_of(
    est: object, builder: PlanBuilder, cols: Cols, categories: list[np.ndarray]
) -> tuple[list[float], list[int]]:
    """Workspace values of every category, and where each input column's run starts.

    Text columns become categorical inputs (their categories are codes); numeric
    columns are checked as ``_check_X`` does (NaN allowed, infinity refused).
    """
    values: list[float] = []
    starts = [0]
    numeric: list[int] = []
    for k, cats in enumerate(categories):
        col = cols.idx[k]
        if cats.dtype.kind in "US" or (cats.dtype.kind == "O" and not _all_numbers(cats)):
            owner = builder.make_categorical(col, est)
            values.extend(builder.code(owner, c) for c in cats)
        elif cats.dtype.kind == "O":
            # numbers (or bools, e.g. SimpleImputer's indicator) held as objects: compared
            # as numbers, and object arrays are never checked for infinity
            builder.use_as_numbers(Cols((col,)), est)
            values.extend(math.nan if c is None else float(c) for c in cats)
        else:
            numeric.append(col)
            values.extend(float(c) for c in cats)
        starts.append(len(values))
    if numeric:
        builder.check(Cols(tuple(numeric)), est, allow_nan=True)
    return values, starts


def _all_numbers(cats: np.ndarray) -> bool:
    return all(
        c is None
        or (isinstance(c, (bool, int, float, np.number, np.bool_)) and not isinstance(c, str))
        for c in cats
    )


def float32_output(est: object, builder: PlanBuilder) -> bool:
    """Whether the encoder's output dtype is float32 (float16 is refused)."""
    dtype = np.dtype(getattr(est, "dtype", None) or np.float64)
    if dtype.kind == "f" and dtype.itemsize < 4:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: dtype={dtype} is not supported; valid: float64, float32 "
            "or an integer dtype"
        )
    return dtype == np.float32


def refuse_sparse(est: object, builder: PlanBuilder, cols: Cols) -> None:
    if cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives a sparse matrix, which scikit-learn refuses; "
            "give it dense input"
        )


@register_converter(
    OrdinalEncoder,
    "categories; handle_unknown error / use_encoded_value (unknown_value, incl. NaN); "
    "encoded_missing_value; min_frequency, max_categories; dtype; numeric and string columns",
)
def convert_ordinal_encoder(est: OrdinalEncoder, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_sparse(est, builder, cols)
    dtype = np.dtype(est.dtype)

    def cast(value: object) -> float:
        if isinstance(value, float) and math.isnan(value):
            return math.nan
        return float(np.asarray(value).astype(dtype))

    values, starts = categories_of(est, builder, cols, list(est.categories_))
    missing = getattr(est, "_missing_indices", {}) or {}
    mappings = (
        est._default_to_infrequent_mappings
        if getattr(est, "_infrequent_enabled", False)
        else [None] * len(cols)
    )
    outs: list[float] = []
    for k, cats in enumerate(est.categories_):
        mapping = mappings[k]
        for c in range(len(cats)):
            if missing.get(k) == c:
                outs.append(cast(est.encoded_missing_value))
            elif mapping is not None:
                outs.append(cast(int(mapping[c])))
            else:
                outs.append(cast(c))
    use_value = est.handle_unknown == "use_encoded_value"
    unknown = [cast(est.unknown_value) if use_value else 0.0] * len(cols)
    out = builder.new_cols([builder.name(c) for c in cols.idx])
    builder.emit(
        "ordinal_encode",
        est,
        builder.idx(cols),
        builder.array(starts, np.int64),
        builder.array(values, np.float64),
        builder.array(outs, np.float64),
        builder.idx(out),
        builder.array(unknown, np.float64),
        int(not use_value),
    )
    return Cols(out.idx, False, float32_output(est, builder))


@register_converter(
    TargetEncoder,
    "transform as at predict time (encodings_; fit_transform's cross fitting is training "
    "only); binary, multiclass and continuous targets; unknown categories get target_mean_",
)
def convert_target_encoder(est: TargetEncoder, builder: PlanBuilder, cols: Cols) -> Cols:
    """``transform``: each known category's ``encodings_`` value, unknown ones ``target_mean_``.

    It is an ordinal lookup whose outputs are the encodings: ``_transform`` with
    ``handle_unknown="ignore"`` finds the category (NaN matches NaN when NaN was seen
    in training), and ``_transform_X_ordinal`` writes, per feature (and per class, for
    a multiclass target: column ``feature * n_classes + class``), its encoding, or the
    target mean where the category is unknown.
    """
    refuse_sparse(est, builder, cols)
    values, starts = categories_of(est, builder, cols, list(est.categories_))
    multiclass = est.target_type_ == "multiclass"
    n_classes = len(est.classes_) if multiclass else 1
    means = np.atleast_1d(np.asarray(est.target_mean_, dtype=np.float64))
    names = []
    for c in cols.idx:
        if multiclass:
            names += [f"{builder.name(c)}_{k}" for k in est.classes_]
        else:
            names.append(builder.name(c))
    out = builder.new_cols(names)
    for k in range(n_classes):
        encoded = [est.encodings_[f * n_classes + k] for f in range(len(cols))]
        builder.emit(
            "ordinal_encode",
            est,
            builder.idx(cols),
            builder.array(starts, np.int64),
            builder.array(values, np.float64),
            builder.array(np.concatenate(encoded), np.float64),
            builder.idx(out.take([f * n_classes + k for f in range(len(cols))])),
            builder.array(np.full(len(cols), means[k]), np.float64),
            0,
        )
    return Cols(out.idx)
