"""KBinsDiscretizer: the bin of each value, then (optionally) its one-hot encoding.

Strategies (uniform, quantile, kmeans) differ only at fit time; ``transform``
in scikit-learn 1.9 is ``np.searchsorted(bin_edges_[j][1:-1], x, side="right")``
per column (no tolerance, no clipping: values outside the fitted range land in
the first or last bin), after ``validate_data`` refused NaN and infinity and,
with ``dtype=np.float32``, rounded the input to float32. The one-hot encodings
go through the fitted internal ``OneHotEncoder``.
"""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import KBinsDiscretizer

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


@register_converter(
    KBinsDiscretizer,
    "encode ordinal, onehot, onehot-dense; strategy uniform, quantile, kmeans; dtype",
)
def convert_kbins_discretizer(est: KBinsDiscretizer, builder: PlanBuilder, cols: Cols) -> Cols:
    if cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives a sparse matrix, which scikit-learn refuses; "
            "give it dense input"
        )
    float32 = est.dtype is not None and np.dtype(est.dtype) == np.float32
    builder.check(cols, est, allow_nan=False, float32=float32)
    starts = [0]
    edges: list[float] = []
    for k, e in enumerate(est.bin_edges_):
        inner = np.asarray(e, dtype=np.float64)[1:-1]
        if np.any(np.diff(inner) < 0) or np.isnan(inner).any():
            raise UnsupportedEstimatorError(
                f"{builder.origin(est)}: the bin edges of column {k} are not sorted; "
                "np.searchsorted has no defined answer for them"
            )
        edges.extend(inner.tolist())
        starts.append(len(edges))
    bins = builder.new_cols([f"bin({builder.name(c)})" for c in cols.idx])
    builder.emit(
        "bin_index",
        est,
        builder.idx(cols),
        builder.idx(bins),
        builder.array(starts, np.int64),
        builder.array(edges, np.float64),
        int(float32),
    )
    if est.encode == "ordinal":
        return Cols(bins.idx, False, float32 or cols.float32)
    encoder = est._encoder
    starts = [0]
    values: list[float] = []
    names: list[str] = []
    for k, cats in enumerate(encoder.categories_):
        for c in cats:
            values.append(float(c))
            names.append(f"{builder.name(cols.idx[k])}=bin{int(c)}")
        starts.append(len(values))
    out = builder.new_cols(names)
    builder.emit(
        "onehot",
        est,
        builder.idx(bins),
        builder.array(starts, np.int64),
        builder.array(values, np.float64),
        builder.idx(out),
        builder.idx(out),
        1,
        message="a bin outside the fitted encoder",
    )
    return Cols(out.idx, est.encode == "onehot", float32 or cols.float32)
