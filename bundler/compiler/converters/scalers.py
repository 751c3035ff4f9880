"""Scalers: an affine map per column, computed as scikit-learn orders it."""

from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter


def emit_affine(
    builder: PlanBuilder, est: object, cols: Cols, offset: np.ndarray, divisor: np.ndarray
) -> Cols:
    """``(x - offset) / divisor``; NaN passes through, as in scikit-learn's scalers."""
    builder.check(cols, est, allow_nan=True)
    out = builder.derived(cols)
    builder.emit(
        "scale",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(offset, np.float64),
        builder.array(divisor, np.float64),
    )
    return out


@register_converter(StandardScaler, "with_mean, with_std")
def convert_standard_scaler(est: StandardScaler, builder: PlanBuilder, cols: Cols) -> Cols:
    n = len(cols)
    offset = est.mean_ if est.with_mean else np.zeros(n)
    divisor = est.scale_ if est.with_std else np.ones(n)
    return emit_affine(builder, est, cols, offset, divisor)
