"""Scalers and Normalizer: per-column maps and row norms, in scikit-learn's order.

Each converter repeats its estimator's ``transform`` operation by operation,
because the order changes the last bits: MinMaxScaler is ``X *= scale_;
X += min_`` (not ``(x - a) / b``), the dense scalers divide (``X /= scale_``)
while on sparse input they multiply by ``1 / scale_``, and Normalizer sums
its norms in the order numpy does.
"""

from __future__ import annotations

import numpy as np
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import (
    FunctionTransformer,
    KBinsDiscretizer,
    MaxAbsScaler,
    MinMaxScaler,
    Normalizer,
    PowerTransformer,
    QuantileTransformer,
    RobustScaler,
    StandardScaler,
)

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.errors import UnsupportedEstimatorError


def _emit_map(builder: PlanBuilder, est: object, kernel: str, cols: Cols, *arrays: object) -> Cols:
    """One column-wise kernel call ``kernel(src, dst, *arrays)``; sparsity is kept."""
    out = builder.derived(cols)
    builder.emit(
        kernel,
        est,
        builder.idx(cols),
        builder.idx(out),
        *(builder.array(a, np.float64) for a in arrays),
    )
    return Cols(out.idx, cols.sparse)


def emit_affine(
    builder: PlanBuilder, est: object, cols: Cols, offset: np.ndarray, divisor: np.ndarray
) -> Cols:
    """``(x - offset) / divisor``; NaN passes through, as in scikit-learn's scalers."""
    builder.check(cols, est, allow_nan=True)
    return _emit_map(builder, est, "scale", cols, offset, divisor)


def _emit_clip(builder: PlanBuilder, est: object, cols: Cols, lo: float, hi: float) -> Cols:
    n = len(cols)
    return _emit_map(builder, est, "clip", cols, np.full(n, lo), np.full(n, hi))


def _sparse_scale(builder: PlanBuilder, est: object, cols: Cols, scale: np.ndarray | None) -> Cols:
    """``inplace_column_scale(X, 1 / scale)``: a product by the reciprocal, not a division."""
    builder.check(cols, est, allow_nan=True)
    if scale is None:
        return cols
    return _emit_map(builder, est, "multiply", cols, 1.0 / np.asarray(scale, dtype=np.float64))


def refuse_float32(builder: PlanBuilder, est: object, cols: Cols) -> None:
    """scikit-learn keeps float32 input float32 and computes in float32: not compiled."""
    if cols.float32:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives float32 features (e.g. from an encoder with "
            "dtype=np.float32) and computes in float32; valid: float64 features "
            "(dtype=np.float64, the default)"
        )


def _refuse_sparse(builder: PlanBuilder, est: object, cols: Cols, why: str) -> None:
    if cols.sparse:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)} receives a sparse matrix here, and scikit-learn refuses "
            f"it ({why}); give it dense input (e.g. sparse_output=False / sparse_threshold=0)"
        )


@register_converter(StandardScaler, "with_mean, with_std; dense and sparse (with_mean=False) input")
def convert_standard_scaler(est: StandardScaler, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    if cols.sparse:
        if est.with_mean:
            _refuse_sparse(builder, est, cols, "with_mean=True cannot center sparse matrices")
        return _sparse_scale(builder, est, cols, est.scale_)
    n = len(cols)
    offset = est.mean_ if est.with_mean else np.zeros(n)
    divisor = est.scale_ if est.with_std else np.ones(n)
    return emit_affine(builder, est, cols, offset, divisor)


@register_converter(MinMaxScaler, "feature_range, clip (X * scale_ + min_, as scikit-learn)")
def convert_min_max_scaler(est: MinMaxScaler, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    _refuse_sparse(builder, est, cols, "MinMaxScaler does not support sparse input")
    builder.check(cols, est, allow_nan=True)
    out = _emit_map(builder, est, "mul_add", cols, est.scale_, est.min_)
    if est.clip:
        lo, hi = (float(v) for v in est.feature_range)
        out = _emit_clip(builder, est, out, lo, hi)
    return out


@register_converter(MaxAbsScaler, "clip; dense (X / scale_) and sparse (X * (1 / scale_)) input")
def convert_max_abs_scaler(est: MaxAbsScaler, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    if cols.sparse:
        out = _sparse_scale(builder, est, cols, est.scale_)
    else:
        out = emit_affine(builder, est, cols, np.zeros(len(cols)), est.scale_)
    if getattr(est, "clip", False):
        out = _emit_clip(builder, est, out, -1.0, 1.0)
    return out


@register_converter(
    RobustScaler, "with_centering, with_scaling, quantile_range, unit_variance; dense and sparse"
)
def convert_robust_scaler(est: RobustScaler, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    if cols.sparse:
        # scikit-learn's sparse branch only scales (centering is refused at fit time)
        return _sparse_scale(builder, est, cols, est.scale_ if est.with_scaling else None)
    if not est.with_centering and not est.with_scaling:
        builder.check(cols, est, allow_nan=True)
        return cols
    n = len(cols)
    offset = est.center_ if est.with_centering else np.zeros(n)
    divisor = est.scale_ if est.with_scaling else np.ones(n)
    return emit_affine(builder, est, cols, offset, divisor)


_NORMS = {"l1": 0, "l2": 1, "max": 2}


def keeps_memory_order(step: object) -> bool:
    """Steps whose dense output keeps the memory order of their input (checked in 1.9)."""
    if isinstance(step, SimpleImputer):
        return type(step) is SimpleImputer and not step.add_indicator
    if isinstance(step, KBinsDiscretizer):
        return type(step) is KBinsDiscretizer and step.encode == "ordinal"
    return type(step) in (
        StandardScaler,
        MinMaxScaler,
        MaxAbsScaler,
        RobustScaler,
        Normalizer,
        FunctionTransformer,
    )


@register_converter(
    Normalizer,
    "norm l1, l2, max; dense and sparse. l1/l2 add as numpy does: pairwise / einsum on "
    "arrays, left to right on DataFrames and sparse input",
)
def convert_normalizer(est: Normalizer, builder: PlanBuilder, cols: Cols) -> Cols:
    refuse_float32(builder, est, cols)
    if est.norm not in _NORMS:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: norm={est.norm!r} is not supported; valid: 'l1', 'l2', 'max'"
        )
    builder.check(cols, est, allow_nan=False)
    # numpy sums a C-ordered array pairwise (np.sum) or in two SIMD lanes (np.einsum), but
    # a Fortran-ordered one left to right; a DataFrame reaches Normalizer Fortran-ordered
    # (directly, or through steps keeping the order: ``Cols.fortran``), and scikit-learn's
    # sparse routines also add left to right.
    fortran = getattr(est, "feature_names_in_", None) is not None or cols.fortran
    order = 1 if cols.sparse or fortran else 0
    out = builder.derived(cols)
    builder.emit(
        "normalize_rows",
        est,
        builder.idx(cols),
        builder.idx(out),
        _NORMS[est.norm],
        order,
        0 if cols.sparse else 1,
    )
    return Cols(out.idx, cols.sparse)


@register_converter(
    PowerTransformer,
    "yeo-johnson and box-cox (scipy's formulas; log1p/expm1 from libm, numpy's own differ "
    "by an ulp), standardize; box-cox refuses values <= 0 as scikit-learn does",
)
def convert_power_transformer(est: PowerTransformer, builder: PlanBuilder, cols: Cols) -> Cols:
    """scipy's transform per column (``power_transform`` kernel), then ``_scaler``.

    ``validate_data(ensure_all_finite="allow-nan")`` refuses infinity; the map can
    overflow to infinity, which the standardizing StandardScaler then refuses too.
    """
    refuse_float32(builder, est, cols)
    _refuse_sparse(builder, est, cols, "PowerTransformer does not support sparse input")
    if est.method not in ("yeo-johnson", "box-cox"):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: method={est.method!r}; valid: 'yeo-johnson', 'box-cox'"
        )
    builder.check(cols, est, allow_nan=True)
    out = builder.derived(cols)
    builder.emit(
        "power_transform",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(est.lambdas_, np.float64),
        int(est.method == "box-cox"),
        message="the Box-Cox transformation can only be applied to strictly positive data",
    )
    out = Cols(out.idx)
    if est.standardize:
        return convert_standard_scaler(est._scaler, builder, out)
    return out


@register_converter(
    QuantileTransformer,
    "output_distribution uniform (numpy.interp both ways, averaged, then the bounds) and "
    "normal (then the 1e-7 bounds, scipy's ndtri bit for bit and the clip), dense input",
)
def convert_quantile_transformer(
    est: QuantileTransformer, builder: PlanBuilder, cols: Cols
) -> Cols:
    """``_transform_col`` per column (``quantile_uniform`` kernel), infinity refused.

    ``output_distribution="normal"`` then applies its own bounds, ``x - 1e-7 < quantiles[0]``
    gives 0 and ``x + 1e-7 > quantiles[-1]`` 1, and ``scipy.stats.norm.ppf`` (Cephes'
    ``ndtri``, ported operation for operation) clipped to ``norm.ppf(1e-7 - eps)`` and
    ``norm.ppf(1 - (1e-7 - eps))`` (``quantile_normal`` kernel). The uniform step's own
    bounds (``x == quantiles[0]`` gives 0) are then overridden, except where 1e-7 is lost
    in rounding ``x`` (beyond about 1e9): there a repeated first or last quantile makes
    scikit-learn's value the interpolation's, not the bound's, and that is refused.
    """
    refuse_float32(builder, est, cols)
    _refuse_sparse(builder, est, cols, "the sparse branch is not compiled")
    quantiles = np.asarray(est.quantiles_, dtype=np.float64)
    if est.output_distribution not in ("uniform", "normal") or quantiles.shape[0] < 2:
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: output_distribution={est.output_distribution!r} with "
            f"{quantiles.shape[0]} quantiles is not supported; valid: 'uniform' or 'normal', "
            "with 2 quantiles or more"
        )
    builder.check(cols, est, allow_nan=True)
    out = builder.derived(cols)
    builder.emit(
        "quantile_uniform",
        est,
        builder.idx(cols),
        builder.idx(out),
        builder.array(quantiles, np.float64),
        builder.array(est.references_, np.float64),
    )
    if est.output_distribution == "normal":
        out = _quantile_normal(est, builder, cols, out, quantiles)
    return Cols(out.idx)


def _quantile_normal(
    est: QuantileTransformer, builder: PlanBuilder, cols: Cols, uniform: Cols, q: np.ndarray
) -> Cols:
    """The normal output from the inputs and their uniform values (see above)."""
    from scipy import stats
    from sklearn.preprocessing._data import BOUNDS_THRESHOLD

    lower, upper = q[0], q[-1]
    lost = ((lower - 1e-7 >= lower) & (q[0] == q[1])) | ((upper + 1e-7 <= upper) & (q[-1] == q[-2]))
    if lost.any():  # (the kernel's 1e-7 is BOUNDS_THRESHOLD: a test checks it)
        names = [builder.name(c) for c in cols.take(np.flatnonzero(lost).tolist()).idx]
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: output_distribution='normal' on {', '.join(names)}, whose "
            "first or last quantile repeats at a magnitude where the 1e-7 bound is lost in "
            "rounding; valid: rescale that feature (below 1e9), or output_distribution='uniform'"
        )
    margin = BOUNDS_THRESHOLD - np.spacing(1)
    clip = [float(stats.norm.ppf(margin)), float(stats.norm.ppf(1 - margin))]
    out = builder.derived(cols)
    builder.emit(
        "quantile_normal",
        est,
        builder.idx(cols + uniform),
        builder.idx(out),
        builder.array(lower, np.float64),
        builder.array(upper, np.float64),
        builder.array(np.full(len(cols), clip[0]), np.float64),
        builder.array(np.full(len(cols), clip[1]), np.float64),
    )
    return out
