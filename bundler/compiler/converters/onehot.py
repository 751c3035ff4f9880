"""OneHotEncoder: one 0/1 column per kept (possibly grouped) category of each input column.

This follows ``transform``: a category's index in ``categories_`` is first
grouped (infrequent categories, from ``min_frequency`` / ``max_categories``,
share the last index ``_default_to_infrequent_mappings`` gives them), then the
grouped index ``_drop_idx_after_grouping`` names is dropped and the later ones
shift down. Unknown values are refused (``handle_unknown="error"``), encode as
all zeros (``"ignore"``), or with ``"infrequent_if_exist"`` / ``"warn"`` set the
infrequent column when the feature has one (all zeros otherwise, or when that
column was dropped). Numeric columns refuse infinity, as ``_check_X`` does.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.preprocessing import OneHotEncoder

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.ordinal import categories_of, float32_output, refuse_sparse
from bundler.errors import UnsupportedEstimatorError

HANDLE_UNKNOWN = ("error", "ignore", "infrequent_if_exist", "warn")


def _shown(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return str(value)


@register_converter(
    OneHotEncoder,
    "handle_unknown error / ignore / infrequent_if_exist / warn; drop (first, if_binary, "
    "explicit); min_frequency, max_categories; sparse or dense output; numeric and string "
    "columns",
)
def convert_one_hot_encoder(est: OneHotEncoder, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_sparse(est, builder, cols)
    if est.handle_unknown not in HANDLE_UNKNOWN:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: handle_unknown={est.handle_unknown!r} is not supported; "
            f"valid: {', '.join(map(repr, HANDLE_UNKNOWN))}"
        )
    infrequent = bool(getattr(est, "_infrequent_enabled", False))
    mappings = est._default_to_infrequent_mappings if infrequent else [None] * len(cols)
    drops = est._drop_idx_after_grouping
    to_infrequent = est.handle_unknown in ("infrequent_if_exist", "warn")
    values, starts = categories_of(est, builder, cols, list(est.categories_))
    names: list[str] = []
    slot: list[int] = []  # per category: index into the new columns, or -1 when dropped
    unknown_slot: list[int] = []  # per input column
    for k, cats in enumerate(est.categories_):
        mapping = mappings[k]
        drop = None if drops is None or drops[k] is None else int(drops[k])
        grouped = est._compute_transformed_categories(k, remove_dropped=False)
        first = len(names)
        position = []  # grouped index -> new column, or -1
        for g, cat in enumerate(grouped):
            if g == drop:
                position.append(-1)
            else:
                position.append(len(names))
                names.append(f"{builder.name(cols.idx[k])}={_shown(cat)}")
        for c in range(len(cats)):
            slot.append(position[int(mapping[c]) if mapping is not None else c])
        # with infrequent categories, the last grouped index is the infrequent one
        unknown_slot.append(position[-1] if to_infrequent and mapping is not None else -1)
        if len(names) - first != est._n_features_outs[k]:
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: column {k} encodes to {len(names) - first} columns, "
                f"scikit-learn says {est._n_features_outs[k]}; this version is not supported"
            )
    out = builder.new_cols(names)
    cat_dst = [out.idx[s] if s >= 0 else -1 for s in slot]
    if any(s >= 0 for s in unknown_slot):
        builder.emit(
            "onehot_fallback",
            est,
            builder.idx(cols),
            builder.array(starts, np.int64),
            builder.array(values, np.float64),
            builder.array(cat_dst, np.int64),
            builder.idx(out),
            builder.array([out.idx[s] if s >= 0 else -1 for s in unknown_slot], np.int64),
        )
    else:
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
    return Cols(out.idx, bool(est.sparse_output), float32_output(est, builder))
