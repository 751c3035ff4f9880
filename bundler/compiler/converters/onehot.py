"""OneHotEncoder: one 0/1 column per kept category of each input column."""

from __future__ import annotations

import math

import numpy as np
from sklearn.preprocessing import OneHotEncoder

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


@register_converter(
    OneHotEncoder,
    "handle_unknown error / ignore; drop (first, if_binary, explicit); numeric and string columns",
)
def convert_one_hot_encoder(est: OneHotEncoder, builder: PlanBuilder, cols: Cols) -> Cols:
    if getattr(est, "_infrequent_enabled", False):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: infrequent categories (min_frequency / max_categories) are "
            "not supported yet; valid: min_frequency=None, max_categories=None"
        )
    if est.handle_unknown not in ("error", "ignore"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: handle_unknown={est.handle_unknown!r} is not supported; "
            "valid: 'error', 'ignore'"
        )
    drop_idx = est.drop_idx_ if est.drop_idx_ is not None else [None] * len(cols)
    starts = [0]
    values: list[float] = []
    names: list[str] = []
    slot: list[int] = []  # per category: index into the new columns, or -1 when dropped
    for k, cats in enumerate(est.categories_):
        col = cols.idx[k]
        text = cats.dtype.kind in "OUS"
        owner = builder.make_categorical(col, est) if text else None
        if not text:
            # numeric input: NaN may be a category, infinity is refused (validate_data)
            builder.check(Cols((col,)), est, allow_nan=True)
        for c, cat in enumerate(cats):
            values.append(builder.code(owner, cat) if owner is not None else float(cat))
            if drop_idx[k] is not None and c == int(drop_idx[k]):
                slot.append(-1)
            else:
                slot.append(len(names))
                shown = "nan" if _is_missing(cat) else str(cat)
                names.append(f"{builder.name(col)}={shown}")
        starts.append(len(values))
    out = builder.new_cols(names)
    cat_dst = [out.idx[s] if s >= 0 else -1 for s in slot]
    builder.emit(
        "onehot",
        est,
        builder.idx(cols),
        builder.array(starts, np.int64),
        builder.array(values, np.float64),
        builder.array(cat_dst, np.int64),
        builder.idx(out),
        int(est.handle_unknown == "error"),
    )
    return out
