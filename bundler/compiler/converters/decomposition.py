"""PCA and TruncatedSVD as transformers: projections onto the fitted components.

- PCA (``_transform``): ``X @ components_.T - mean_ @ components_.T``, the centring applied
  after the projection as scikit-learn does; with ``whiten``, divided by
  ``sqrt(explained_variance_)``. A component of (almost) no variance (below eps, where
  scikit-learn clips the scale, or below 1e-7 of the largest) holds BLAS rounding noise
  divided by a tiny number, so such a fit is refused.
- TruncatedSVD: ``X @ components_.T``.

The projections go through BLAS in scikit-learn, whose summation order depends on the CPU
and the batch shape; the plan's ``linear_dot2`` computes each dot product as if in twice
the precision and rounds once, so the only difference left is BLAS's own rounding. The
centring term is computed here with scikit-learn's own numpy expression. Both validate X
as ``validate_data`` does (NaN and infinity refused). Float32 and sparse inputs are
refused: scikit-learn then computes in float32, or with sparse products.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.decomposition import PCA, TruncatedSVD

from bundler.compiler._builder import Cols, PlanBuilder
from bundler.compiler._registry import register_converter
from bundler.compiler.converters.linear import emit_dot2
from bundler.errors import UnsupportedEstimatorError


def _components(est: Any, builder: PlanBuilder, cols: Cols) -> np.ndarray:
    origin = builder.origin(est)
    comp = np.asarray(est.components_)
    if comp.dtype != np.float64:
        raise UnsupportedEstimatorError(
            f"{origin} was fitted on {comp.dtype} data and computes in that precision; "
            "fit it on float64 data"
        )
    if cols.sparse or cols.float32:
        kind = "a sparse matrix" if cols.sparse else "float32 values"
        raise UnsupportedEstimatorError(
            f"{origin} receives {kind}, on which scikit-learn projects differently; give it "
            "dense float64 input (for example OneHotEncoder(sparse_output=False))"
        )
    if comp.ndim != 2 or comp.shape[1] != len(cols):
        raise UnsupportedEstimatorError(
            f"{origin} was fitted on {comp.shape[-1]} features but receives {len(cols)}"
        )
    return comp


def _names(est: Any, n: int) -> list[str]:
    prefix = type(est).__name__.lower()
    return [f"{prefix}{i}" for i in range(n)]


@register_converter(PCA, "every svd_solver; whiten; n_components; dense float64 input")
def convert_pca(est: PCA, builder: PlanBuilder, cols: Cols) -> Cols:
    comp = _components(est, builder, cols)
    mean = np.asarray(est.mean_, dtype=np.float64)
    centre = (np.reshape(mean, (1, -1)) @ comp.T)[0]  # scikit-learn's own expression
    out = emit_dot2(builder, est, cols, comp, -centre, _names(est, comp.shape[0]))
    if not est.whiten:
        return out
    scale = np.sqrt(np.asarray(est.explained_variance_, dtype=np.float64))
    # below eps scikit-learn clips the scale; below 1e-7 of the largest, dividing by it
    # magnifies BLAS's rounding noise in the projection past the parity bar
    floor = max(np.finfo(scale.dtype).eps, 1e-7 * float(scale.max(initial=0.0)))
    if np.any(scale < floor):
        raise UnsupportedEstimatorError(
            f"{builder.origin(est)}: whiten=True with components of (almost) no variance "
            "(a standard deviation below 1e-7 of the largest): their whitened values are the "
            "rounding noise of scikit-learn's BLAS dot products divided by a tiny number, "
            "which no other computation reproduces; fit with fewer components "
            f"(n_components <= {int(np.sum(scale >= floor))})"
        )
    white = builder.derived(out, " (whitened)")
    builder.emit(
        "scale",
        est,
        builder.idx(out),
        builder.idx(white),
        builder.array(np.zeros(len(scale)), np.float64),
        builder.array(scale, np.float64),
    )
    return white


@register_converter(TruncatedSVD, "every algorithm; n_components; dense float64 input")
def convert_truncated_svd(est: TruncatedSVD, builder: PlanBuilder, cols: Cols) -> Cols:
    comp = _components(est, builder, cols)
    return emit_dot2(builder, est, cols, comp, np.zeros(comp.shape[0]), _names(est, comp.shape[0]))
